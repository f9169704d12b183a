// The volume actions, shared by the volumes table and the volume page. Destructive ones confirm
// first; every refusal shows the API's own message (in the dialog, or as a notice).
import {post, del, seg} from './api.js';
import {h, bytes} from './dom.js';
import {action} from './dialog.js';
import {refreshNow, notify} from './live.js';

export function createVolume() {
  action({
    title: 'Create a volume',
    fields: [
      {name: 'name', label: 'Name', required: true, placeholder: 'pg-data',
        help: '1–63 letters, digits, ".", "_", "-", starting with a letter or digit'},
      {name: 'size', label: 'Size', required: true, value: '1GiB', help: 'e.g. 512MiB, 10GiB (thin: nothing is allocated until written)'},
      {name: 'repl', label: 'Replicas', value: '', options: [
        {value: '', label: 'default (up to 3, one per failure domain)'}, {value: '1', label: '1'}, {value: '2', label: '2'}, {value: '3', label: '3'}]},
    ],
    confirm: 'Create',
    run: (v) => post('/v1/volumes?wait=ready', Object.assign({name: v.name, size: v.size}, v.repl ? {repl: Number(v.repl)} : {})),
    onDone: (vol) => { notify(`Created ${vol.name} (${bytes(vol.sizeBytes)}, ${vol.repl} replica(s))`); refreshNow(); },
  });
}

export function resizeVolume(v) {
  action({
    title: `Resize ${v.name}`,
    text: `Now ${bytes(v.sizeBytes)}. Volumes only grow (shrinking is not supported), online, attached or not. `
      + 'A mounted file system grows at its next attach.',
    fields: [{name: 'size', label: 'New size', required: true, value: '', placeholder: 'e.g. 20GiB'}],
    confirm: 'Grow',
    run: (f) => post(`/v1/volumes/${seg(v.name)}/resize`, {size: /^\d+$/.test(f.size) ? Number(f.size) : f.size}),
    onDone: (r) => { notify(`${v.name} is now ${bytes(r.sizeBytes)}`); refreshNow(); },
  });
}

export function attachVolume(v) {
  action({
    title: `Attach ${v.name} here`,
    text: 'Attaches on the node serving this page. Without a mount directory the volume is exported over NBD only.',
    fields: [{name: 'mount', label: 'Mount directory (optional)', value: '', placeholder: '/mnt/' + v.name}],
    confirm: 'Attach',
    run: (f) => post(`/v1/volumes/${seg(v.name)}/attach`, f.mount ? {mount: f.mount} : undefined),
    onDone: (a) => { notify(`${v.name} attached: ${a.nbdUri || a.nfsUri}`); refreshNow(); },
  });
}

export function detachVolume(v) {
  const on = v.attachment ? v.attachment.nodeId : '?';
  action({
    title: `Detach ${v.name}?`,
    text: `${v.name} is attached on ${on}${v.attachment && v.attachment.mountDir ? ' and mounted at ' + v.attachment.mountDir : ''}. `
      + 'Detaching unmounts it and stops its NBD export: programs using it lose access.',
    confirm: 'Detach', danger: true,
    run: () => post(`/v1/volumes/${seg(v.name)}/detach`),
    onDone: () => { notify(`${v.name} detached`); refreshNow(); },
  });
}

export function deleteVolume(v, after) {
  action({
    title: `Delete ${v.name}?`,
    text: `This deletes ${v.name} (${bytes(v.sizeBytes)}) and every replica of its data. It cannot be undone.`,
    confirm: 'Delete', danger: true,
    run: () => del(`/v1/volumes/${seg(v.name)}`),
    onDone: () => { notify(`${v.name} deleted`); if (after) after(); refreshNow(); },
  });
}

export function snapshotVolume(v) {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  action({
    title: `Snapshot ${v.name}`,
    fields: [{name: 'name', label: 'Snapshot name', required: true, value: 'snap-' + stamp}],
    confirm: 'Take snapshot',
    run: (f) => post(`/v1/volumes/${seg(v.name)}/snapshots`, {name: f.name}),
    onDone: (s) => { notify(`Snapshot ${v.name}@${s.name} taken`); refreshNow(); },
  });
}

export function deleteSnapshot(v, s) {
  action({
    title: `Delete snapshot ${v}@${s.name}?`,
    text: `Frees about ${bytes(s.exclusiveBytes)}. The snapshot cannot be restored afterwards.`,
    confirm: 'Delete snapshot', danger: true,
    run: () => del(`/v1/volumes/${seg(v)}/snapshots/${seg(s.name)}`),
    onDone: () => { notify(`Snapshot ${v}@${s.name} deleted`); refreshNow(); },
  });
}

/** The row of buttons for one volume. */
export function volumeButtons(v, {onDelete} = {}) {
  const b = (label, act, fn, cls) => h('button', {type: 'button', class: 'small ' + (cls || ''), 'data-action': act, onclick: fn}, label);
  return h('span', {class: 'actions'},
    v.attachment ? b('Detach', 'detach', () => detachVolume(v), 'danger') : b('Attach', 'attach', () => attachVolume(v)),
    b('Resize', 'resize', () => resizeVolume(v)),
    b('Snapshot', 'snapshot', () => snapshotVolume(v)),
    b('Delete', 'delete', () => deleteVolume(v, onDelete), 'danger'));
}
