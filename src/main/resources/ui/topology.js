// Topology: nodes grouped by zone (columns), one row per volume, a dot where a replica lives.
// Green: in sync on an up node; amber ring: behind (resyncing or waiting); red: its node is down.
// A volume that is not healthy is marked on its row.
import {get, ApiError} from './api.js';
import {h, s, replace, badge} from './dom.js';
import {clusterStatus, pageError, zoneOf} from './cluster.js';

const COL_W = 96;
const ROW_H = 34;
const LEFT = 190;
const TOP = 78;

export function topologyPage(main) {
  const body = h('div', {});
  replace(main, h('h1', {}, 'Topology'),
    h('p', {class: 'muted'}, 'Nodes grouped by zone; each row is a volume and each dot one of its replicas.'),
    body);
  return {
    async refresh() {
      let c;
      let vols;
      try {
        [c, vols] = await Promise.all([clusterStatus(), get('/v1/volumes')]);
      } catch (e) {
        if (e instanceof ApiError && !e.needsSignIn) replace(body, pageError(e));
        throw e;
      }
      replace(body, draw(c.nodes || [], vols.volumes), legend());
    },
  };
}

function draw(nodes, volumes) {
  const zones = new Map();
  for (const n of [...nodes].sort((a, b) => zoneOf(a).localeCompare(zoneOf(b)) || a.nodeId.localeCompare(b.nodeId))) {
    const z = zoneOf(n) || '(no zone)';
    if (!zones.has(z)) zones.set(z, []);
    zones.get(z).push(n);
  }
  const col = new Map();
  const parts = [];
  let x = LEFT;
  for (const [zone, members] of zones) {
    const w = members.length * COL_W;
    parts.push(s('rect', {x: x + 2, y: 4, width: w - 4, height: TOP + volumes.length * ROW_H, rx: 6, class: 'zone'}),
      s('text', {x: x + w / 2, y: 22, class: 'zone-label', 'text-anchor': 'middle'}, 'zone ' + zone));
    for (const n of members) {
      col.set(n.nodeId, x + COL_W / 2);
      parts.push(s('g', {class: 'node node-' + n.state, 'data-node': n.nodeId},
        s('rect', {x: x + 8, y: 32, width: COL_W - 16, height: 34, rx: 4}),
        s('text', {x: x + COL_W / 2, y: 47, 'text-anchor': 'middle', class: 'node-id'}, n.nodeId),
        s('text', {x: x + COL_W / 2, y: 61, 'text-anchor': 'middle', class: 'node-state'}, n.state + (n.cordoned ? ' · cordoned' : ''))));
      x += COL_W;
    }
  }
  volumes.forEach((v, i) => {
    const y = TOP + i * ROW_H + ROW_H / 2;
    const bad = v.health !== 'healthy';
    const xs = (v.replicas || []).map((r) => col.get(r.nodeId)).filter((p) => p !== undefined);
    const row = [
      s('rect', {x: 4, y: y - ROW_H / 2 + 2, width: x - 4, height: ROW_H - 4, rx: 4, class: 'row' + (bad ? ' row-' + v.health : '')}),
      s('text', {x: 12, y: y + 4, class: 'vol-name'}, (bad ? '⚠ ' : '') + v.name),
      s('text', {x: LEFT - 10, y: y + 4, 'text-anchor': 'end', class: 'vol-health ' + v.health}, v.health),
    ];
    if (xs.length > 1) row.push(s('line', {x1: Math.min(...xs), x2: Math.max(...xs), y1: y, y2: y, class: 'link'}));
    for (const r of v.replicas || []) {
      const cx = col.get(r.nodeId);
      if (cx === undefined) continue;
      const cls = r.nodeState !== 'up' ? 'down' : !r.inSync || r.state !== 'ready' ? 'behind' : 'ok';
      row.push(s('circle', {cx, cy: y, r: 9, class: 'replica ' + cls, 'data-replica': r.nodeId},
        s('title', {}, `${v.name} on ${r.nodeId}: ${r.state}, ${r.inSync ? 'in sync' : 'not in sync'}, node ${r.nodeState}`)));
      if (v.attachment && v.attachment.nodeId === r.nodeId) {
        row.push(s('circle', {cx, cy: y, r: 13, class: 'attached'}));
      }
    }
    parts.push(s('g', {class: 'volume', 'data-volume': v.name, 'data-health': v.health}, row));
  });
  const height = TOP + volumes.length * ROW_H + 12;
  return s('svg', {id: 'topology', viewBox: `0 0 ${x + 8} ${height}`, width: x + 8, height, role: 'img',
    'aria-label': 'replicas of each volume on the nodes, grouped by zone'}, parts);
}

function legend() {
  return h('p', {class: 'legend'},
    badge('in sync', 'ok'), ' replica in sync on an up node · ',
    badge('behind', 'warn'), ' replica not in sync (resync or rebuild pending) · ',
    badge('down', 'bad'), ' replica on a node that is down · a ring marks where the volume is attached');
}
