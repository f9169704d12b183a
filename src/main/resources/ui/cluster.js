// Cluster page: who leads, every node's state, role, zone and capacity, the failure-detection settings.
import {get, post, seg, ApiError} from './api.js';
import {h, replace, bytes, bar, badge, kv, table, ms, ago} from './dom.js';
import {action} from './dialog.js';
import {refreshNow, notify} from './live.js';

export const zoneOf = (n) => (n.labels && n.labels.zone) || '';

/** GET /v1/cluster, or this node's last view when there is no quorum (marked stale). */
export async function clusterStatus() {
  try {
    return await get('/v1/cluster');
  } catch (e) {
    if (e instanceof ApiError && e.status === 503) {
      const stale = await get('/v1/cluster?stale=true');
      stale.staleBecause = e.message;
      return stale;
    }
    throw e;
  }
}

export function pageError(e) {
  return h('p', {class: 'page-error', role: 'alert'},
    e instanceof ApiError ? `The API answered HTTP ${e.status} ${e.code}: ${e.message}` : String(e.message || e));
}

export function clusterPage(main) {
  const body = h('div', {});
  replace(main, h('h1', {}, 'Cluster'), body);
  return {
    async refresh() {
      let c;
      try {
        c = await clusterStatus();
      } catch (e) {
        if (e instanceof ApiError && !e.needsSignIn) replace(body, pageError(e));
        throw e;
      }
      replace(body, render(c));
    },
  };
}

function roleOf(n, c) {
  if (n.nodeId === c.leaderNodeId) return 'leader';
  return n.raftRole || '—';
}

function nodeActions(n) {
  const cordon = n.cordoned
    ? h('button', {type: 'button', class: 'small', 'data-action': 'uncordon', onclick: () => run(n, 'uncordon')}, 'Uncordon')
    : h('button', {type: 'button', class: 'small', 'data-action': 'cordon', onclick: () => run(n, 'cordon')}, 'Cordon');
  const drain = h('button', {type: 'button', class: 'small danger', 'data-action': 'drain', onclick: () => action({
    title: `Drain ${n.nodeId}?`,
    text: `${n.nodeId} is cordoned and every replica on it gets a replacement on another node (a full copy each). `
      + 'Volumes stay available; the old replicas go once their replacements are in sync.',
    confirm: 'Drain', danger: true,
    run: () => post(`/v1/nodes/${seg(n.nodeId)}/drain`),
    onDone: (r) => {
      const unplaced = Object.entries(r.unplaced || {});
      notify(`Draining ${n.nodeId}: ${Object.keys(r.replacementNodeIds || {}).length} replacement(s) placed`
        + (unplaced.length ? `; not placed: ${unplaced.map(([v, why]) => v + ' (' + why + ')').join(', ')}` : ''),
      unplaced.length ? 'warn' : 'ok');
      refreshNow();
    },
  })}, 'Drain');
  return h('span', {class: 'actions'}, cordon, ' ', drain);
}

async function run(n, verb) {
  try {
    await post(`/v1/nodes/${seg(n.nodeId)}/${verb}`);
    notify(`${n.nodeId}: ${verb === 'cordon' ? 'cordoned (no new replicas)' : 'uncordoned'}`);
    refreshNow();
  } catch (e) {
    notify(`${verb} ${n.nodeId} refused: ${e.message}`, 'error');
  }
}

function render(c) {
  const cap = c.capacity || {};
  const used = (cap.capacityBytes || 0) - (cap.freeBytes || 0);
  const provisionable = (cap.capacityBytes || 0) * (cap.overcommitRatio || 1);
  const vols = c.volumes || {};
  const fd = c.failureDetection || {};
  const rows = (c.nodes || []).map((n) => {
    const nUsed = n.capacityBytes - n.freeBytes;
    return h('tr', {'data-node': n.nodeId, class: 'node-' + n.state},
      h('td', {class: 'id'}, n.nodeId),
      h('td', {class: 'state', title: n.stateReason || ''}, badge(n.state),
        n.stateReason && n.state !== 'up' ? h('small', {class: 'muted'}, ' ' + n.stateReason) : null,
        n.cordoned ? [' ', badge('cordoned', 'warn')] : null, n.draining ? [' ', badge(n.scheduling === 'drained' ? 'drained' : 'draining', 'warn')] : null),
      h('td', {class: 'role'}, roleOf(n, c)),
      h('td', {class: 'zone'}, zoneOf(n) || h('span', {class: 'muted'}, '—')),
      h('td', {class: 'capacity'},
        bar(nUsed, n.capacityBytes, `${bytes(nUsed)} used of ${bytes(n.capacityBytes)}`, nUsed / n.capacityBytes > 0.9 ? 'hot' : ''),
        bar(n.provisionedBytes, n.capacityBytes * (cap.overcommitRatio || 1),
          `${bytes(n.provisionedBytes)} provisioned of ${bytes(n.capacityBytes * (cap.overcommitRatio || 1))}`, 'thin')),
      h('td', {class: 'num'}, n.replicaCount),
      h('td', {}, ago(n.lastHeartbeatAt)),
      h('td', {}, nodeActions(n)));
  });
  return h('div', {},
    c.staleBecause ? h('p', {class: 'page-error'}, `No quorum: showing ${c.nodeId}'s last known view. ${c.staleBecause}`) : null,
    h('section', {class: 'cards'},
      h('div', {class: 'card'}, h('h3', {}, 'Raft'), kv([
        ['leader', c.leaderNodeId || h('span', {class: 'bad'}, 'none')],
        ['term', c.term],
        ['voters', (c.voterNodeIds || []).join(', ')],
        ['this node', `${c.nodeId} (${c.raftRole})`]])),
      h('div', {class: 'card'}, h('h3', {}, 'Capacity (up nodes)'),
        bar(used, cap.capacityBytes, `${bytes(used)} used of ${bytes(cap.capacityBytes)}`),
        bar(cap.provisionedBytes, provisionable, `${bytes(cap.provisionedBytes)} provisioned of ${bytes(provisionable)}`, 'thin'),
        h('small', {class: 'muted'}, `provisionable: capacity × over-commit ${cap.overcommitRatio}`)),
      h('div', {class: 'card', id: 'volume-health'}, h('h3', {}, 'Volumes'), kv([
        ['total', vols.total],
        ['healthy', vols.healthy],
        ['degraded', vols.degraded ? h('span', {class: 'warn'}, vols.degraded) : 0],
        ['unavailable', vols.unavailable ? h('span', {class: 'bad'}, vols.unavailable) : 0],
        ['creating', vols.creating]])),
      h('div', {class: 'card', id: 'failure-detection'}, h('h3', {}, 'Failure detection'), kv([
        ['heartbeat', ms(fd.heartbeatMs)],
        ['suspect after', ms(fd.suspectAfterMs)],
        ['down after', ms(fd.downAfterMs)],
        ['rebuild after', ms(fd.rebuildAfterMs)],
        ['voter replaced after', ms(fd.voterReplaceAfterMs)],
        ['source', fd.source === 'cluster' ? 'set for the cluster' : 'defaults of ' + c.nodeId]]))),
    h('h2', {}, 'Nodes'),
    table(['node', 'state', 'Raft', 'zone', 'capacity', 'replicas', 'heartbeat', ''], rows, {id: 'nodes', class: 'grid'}));
}
