// Volumes page: every volume with its size, health, replicas (in sync or not, on which nodes) and attachment.
import {get, ApiError} from './api.js';
import {h, replace, bytes, badge, table} from './dom.js';
import {createVolume, volumeButtons} from './actions.js';
import {pageError} from './cluster.js';

export function replicaChips(v) {
  return h('span', {class: 'chips'}, (v.replicas || []).map((r) => {
    const cls = r.nodeState !== 'up' ? 'bad' : !r.inSync ? 'warn' : r.state === 'ready' ? 'ok' : 'warn';
    const why = r.nodeState !== 'up' ? `node ${r.nodeState}` : !r.inSync ? 'not in sync' : r.state;
    return h('span', {class: 'chip ' + cls, title: `${r.nodeId}: ${why}`, 'data-replica': r.nodeId}, r.nodeId);
  }));
}

export function inSyncCount(v) {
  const rs = v.replicas || [];
  return `${rs.filter((r) => r.inSync && r.nodeState === 'up').length}/${rs.length} in sync`;
}

/**
 * The clients' I/O over the last ~5 s, measured where the volume is attached (the API's `io`): reads
 * and writes per second, with their bytes per second.
 */
export function ioText(io) {
  const one = (ops, bps) => `${ops} IOPS · ${bytes(bps)}/s`;
  return {read: 'R ' + one(io.readIops, io.readBytesPerSec), write: 'W ' + one(io.writeIops, io.writeBytesPerSec)};
}

function ioCell(v) {
  if (!v.attachment) return h('span', {class: 'muted'}, '—');
  if (!v.io) return h('span', {class: 'muted', title: `${v.attachment.nodeId}, where it is attached, did not answer`}, 'unknown');
  const t = ioText(v.io);
  return h('span', {title: `over the last ${(v.io.windowMs / 1000).toFixed(1)} s, measured on ${v.attachment.nodeId}`,
    'data-read-iops': v.io.readIops, 'data-write-iops': v.io.writeIops,
    'data-read-bps': v.io.readBytesPerSec, 'data-write-bps': v.io.writeBytesPerSec},
  h('span', {class: 'io-read nowrap'}, t.read), h('br', {}), h('span', {class: 'io-write nowrap'}, t.write));
}

export function volumesPage(main) {
  const body = h('div', {});
  replace(main,
    h('div', {class: 'title-row'}, h('h1', {}, 'Volumes'),
      h('button', {type: 'button', class: 'primary', id: 'create-volume', onclick: createVolume}, 'Create volume')),
    body);
  return {
    async refresh() {
      let list;
      try {
        list = await get('/v1/volumes');
      } catch (e) {
        if (e instanceof ApiError && !e.needsSignIn) replace(body, pageError(e));
        throw e;
      }
      const rows = list.volumes.map((v) => h('tr', {'data-volume': v.name, class: 'health-' + v.health},
        h('td', {class: 'name'}, h('a', {href: '#/volume/' + encodeURIComponent(v.name)}, v.name)),
        h('td', {class: 'num size'}, bytes(v.sizeBytes)),
        h('td', {class: 'num', title: 'written bytes, as stored by the replica on the node serving this page'},
          v.allocatedBytes ? bytes(v.allocatedBytes) : '—'),
        h('td', {class: 'health'}, badge(v.health)),
        h('td', {class: 'replicas'}, h('span', {class: 'muted'}, inSyncCount(v) + ' '), replicaChips(v)),
        h('td', {class: 'attached'}, v.attachment ? v.attachment.nodeId + (v.attachment.mountDir ? ' ' + v.attachment.mountDir : '') : h('span', {class: 'muted'}, '—')),
        h('td', {class: 'num io'}, ioCell(v)),
        h('td', {class: 'num'}, v.epoch),
        h('td', {}, volumeButtons(v))));
      replace(body, table(['name', 'size', 'allocated', 'health', 'replicas', 'attached on', 'I/O (5 s)', 'epoch', ''], rows,
        {id: 'volumes', class: 'grid'}));
    },
  };
}
