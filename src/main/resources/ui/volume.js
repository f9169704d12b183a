// One volume: replicas per node and their states, the engine's in-sync set and epoch, resync and
// rebuild progress (rate, ETA), snapshots, backups and the volume's recent events.
import {get, seg, ApiError} from './api.js';
import {h, replace, bytes, bar, badge, kv, table, rate, duration, time} from './dom.js';
import {volumeButtons, deleteSnapshot} from './actions.js';
import {pageError} from './cluster.js';
import {replicaChips, inSyncCount, ioText} from './volumes.js';

export function volumePage(main, params) {
  const name = params[0] || '';
  const body = h('div', {});
  replace(main, h('p', {class: 'crumbs'}, h('a', {href: '#/volumes'}, 'Volumes'), ' / ', name), body);
  let extrasAtMs = 0;
  let extras = {snapshots: null, backups: null, jobs: null, events: null};

  async function loadExtras() {
    // snapshots, backups and events change rarely: every 5 s, and each may be missing on its own
    const [snaps, targets, jobs, events] = await Promise.allSettled([
      get(`/v1/volumes/${seg(name)}/snapshots`),
      get('/v1/backup-targets'),
      get('/v1/backup-jobs'),
      get('/v1/events?limit=1000'),
    ]);
    extras.snapshots = snaps.status === 'fulfilled' ? snaps.value.snapshots : null;
    extras.jobs = jobs.status === 'fulfilled' ? jobs.value.jobs.filter((j) => j.volume === name) : null;
    extras.events = events.status === 'fulfilled' ? events.value.events.filter((e) => e.subject === name || (e.subject || '').startsWith(name + '@')).slice(-20).reverse() : null;
    extras.backups = null;
    if (targets.status === 'fulfilled' && targets.value.targets.length) {
      try {
        extras.backups = (await get('/v1/backups')).backups.filter((b) => b.volume === name);
      } catch { extras.backups = null; }
    }
  }

  return {
    async refresh() {
      let v;
      try {
        v = await get(`/v1/volumes/${seg(name)}?follow=engine`);
      } catch (e) {
        if (e instanceof ApiError && !e.needsSignIn) replace(body, pageError(e));
        throw e;
      }
      if (Date.now() - extrasAtMs > 5000) {
        await loadExtras();
        extrasAtMs = Date.now();
      }
      replace(body, render(v, extras));
    },
  };
}

function render(v, x) {
  const e = v.engine;
  const st = e && e.status;
  const resyncs = new Map((st ? st.resyncs : []).map((r) => [r.nodeId, r]));
  const replicaRows = (v.replicas || []).map((r) => {
    const rs = resyncs.get(r.nodeId);
    return h('tr', {'data-replica': r.nodeId},
      h('td', {}, r.nodeId),
      h('td', {}, badge(r.nodeState)),
      h('td', {}, badge(r.state)),
      h('td', {class: 'in-sync'}, r.inSync ? badge('in sync', 'ok') : badge('out of sync', 'warn'),
        !r.inSync && r.missedSinceGeneration ? h('small', {class: 'muted'}, ` missed since generation ${r.missedSinceGeneration}`) : null),
      h('td', {class: 'resync'}, rs ? progress(rs) : h('span', {class: 'muted'}, '—')));
  });
  const ops = [...resyncs.values()].filter((r) => !(v.replicas || []).some((x) => x.nodeId === r.nodeId));
  return h('div', {'data-volume': v.name, class: 'health-' + v.health},
    h('div', {class: 'title-row'}, h('h1', {}, v.name, ' ', badge(v.health)), volumeButtons(v, {onDelete: () => { location.hash = '#/volumes'; }})),
    h('section', {class: 'cards'},
      h('div', {class: 'card'}, h('h3', {}, 'Volume'), kv([
        ['size', h('span', {id: 'volume-size'}, bytes(v.sizeBytes))],
        ['replicas', `${v.repl} (${inSyncCount(v)}), min in sync ${v.minInSync}`],
        ['spread by', v.spreadBy],
        ['created', time(v.createdAt)],
        ['uuid', h('code', {}, v.uuid)]])),
      h('div', {class: 'card'}, h('h3', {}, 'Attachment'), v.attachment ? kv([
        ['node', v.attachment.nodeId],
        ['method', v.attachment.method],
        ['mount', v.attachment.mountDir || '—'],
        ['NBD', h('code', {}, v.attachment.nbdUri)],
        ['since', time(v.attachment.attachedAt)]]) : h('p', {class: 'muted'}, 'not attached')),
      h('div', {class: 'card', id: 'engine'}, h('h3', {}, 'Engine'), e ? kv([
        ['runs on', `${e.nodeId} (${e.kind === 'resync' ? 'maintenance attachment for a resync' : 'attached'})`],
        ['state', st ? badge(st.state, st.state === 'serving' ? 'ok' : 'warn') : h('span', {class: 'muted'}, e.statusError || 'status unknown')],
        ['epoch', h('span', {id: 'epoch'}, st ? st.epoch : v.epoch)],
        ['in-sync set', h('span', {id: 'in-sync-set'}, st ? (st.inSyncNodeIds || []).join(', ') || 'empty' : '—')],
        ['I/O (5 s)', v.io ? h('span', {id: 'volume-io'}, ioText(v.io).read, h('br', {}), ioText(v.io).write)
          : h('span', {id: 'volume-io', class: 'muted'}, `unknown (${e.nodeId} did not answer)`)],
        st ? ['writes', String(st.counters.writes)] : null,
        st ? ['fenced requests', st.counters.fencedRequests] : null,
        st ? ['checksum repairs', st.counters.checksumRepairs] : null,
        st ? ['resync bytes', bytes(st.counters.resyncBytes)] : null]) : kv([
        ['epoch', h('span', {id: 'epoch'}, v.epoch)],
        ['engine', h('span', {class: 'muted'}, 'none: the volume is detached (no writes, nothing to resync)')]]))),
    h('h2', {}, 'Replicas'),
    table(['node', 'node state', 'replica', 'in sync', 'resync / rebuild'], replicaRows, {id: 'replicas', class: 'grid'}),
    ops.length ? [h('h3', {}, 'Copies to new replicas'), h('div', {}, ops.map((r) => h('p', {'data-replica': r.nodeId}, r.nodeId + ' ', progress(r))))] : null,
    h('h2', {}, 'Snapshots'),
    x.snapshots === null ? h('p', {class: 'muted'}, 'unavailable') :
      table(['name', 'created', 'size', 'exclusive', 'on nodes', ''], x.snapshots.map((s) => h('tr', {'data-snapshot': s.name},
        h('td', {}, s.name), h('td', {}, time(s.createdAt)), h('td', {class: 'num'}, bytes(s.sizeBytes)),
        h('td', {class: 'num'}, bytes(s.exclusiveBytes)), h('td', {}, (s.nodeIds || []).join(', ')),
        h('td', {}, h('button', {type: 'button', class: 'small danger', 'data-action': 'delete-snapshot', onclick: () => deleteSnapshot(v.name, s)}, 'Delete')))),
      {id: 'snapshots', class: 'grid'}),
    h('h2', {}, 'Backups'),
    backups(x),
    h('h2', {}, 'Recent events'),
    x.events === null ? h('p', {class: 'muted'}, 'unavailable') :
      table(['time', 'type', 'message'], x.events.map((ev) => h('tr', {}, h('td', {class: 'nowrap'}, time(ev.at)), h('td', {}, ev.type), h('td', {}, ev.message))),
        {id: 'volume-events', class: 'grid'}));
}

function progress(r) {
  const label = `${r.kind === 'full' ? 'rebuild' : 'resync'} ${bytes(r.bytesDone)} of ${bytes(r.bytesTotal)}`
    + ` · ${rate(r.rateBytesPerSec)} · ETA ${duration(r.etaMs < 0 ? -1 : r.etaMs / 1000)}`;
  return h('span', {class: 'progress', 'data-kind': r.kind, 'data-done': r.bytesDone, 'data-total': r.bytesTotal},
    bar(r.bytesDone, r.bytesTotal, label, 'resync'));
}

function backups(x) {
  const parts = [];
  if (x.jobs && x.jobs.length) {
    parts.push(table(['job', 'operation', 'state', 'progress'], x.jobs.map((j) => {
      const p = j.progress || {};
      return h('tr', {}, h('td', {}, j.id), h('td', {}, j.operation), h('td', {}, badge(j.state)),
        h('td', {}, j.state === 'running'
          ? bar(p.bytesDone, p.bytesTotal, `${p.phase || ''} ${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)} · ${rate(p.rateBytesPerSec)} · ETA ${duration(p.etaMs == null ? null : p.etaMs / 1000)}`)
          : (j.error ? j.error.message : '')));
    }), {class: 'grid'}));
  }
  if (x.backups === null) {
    parts.push(h('p', {class: 'muted'}, 'No backup target configured (or it cannot be read now).'));
  } else {
    parts.push(table(['backup', 'target', 'created', 'stored', 'parent'], x.backups.map((b) => h('tr', {},
      h('td', {}, h('code', {}, b.id)), h('td', {}, b.target), h('td', {}, time(b.createdAt)),
      h('td', {class: 'num'}, bytes(b.storedPlainBytes)), h('td', {}, b.parent || '—'))), {class: 'grid'}));
  }
  return parts;
}
