// Events: the cluster's decisions as they happen (polled with ?after=SEQ), filtered in the page.
import {get, ApiError} from './api.js';
import {h, replace, time, table} from './dom.js';
import {pageError} from './cluster.js';

const KEEP = 2000;

export function eventsPage(main) {
  const events = [];
  let lastSeq = 0;
  let paused = false;
  const type = h('select', {id: 'event-type'}, h('option', {value: ''}, 'all types'));
  const subject = h('input', {id: 'event-subject', type: 'search', placeholder: 'volume or node', spellcheck: 'false'});
  const text = h('input', {id: 'event-text', type: 'search', placeholder: 'text in message', spellcheck: 'false'});
  const pause = h('button', {type: 'button', id: 'event-pause'}, 'Pause');
  const count = h('span', {class: 'muted'});
  const list = h('div', {});
  const types = new Set();
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
  });
  for (const el of [type, subject, text]) el.addEventListener('input', render);
  replace(main, h('h1', {}, 'Events'),
    h('div', {class: 'filters'}, h('label', {}, 'Type ', type), h('label', {}, 'Subject ', subject),
      h('label', {}, 'Message ', text), pause, count),
    list);

  function render() {
    const t = type.value;
    const subj = subject.value.trim().toLowerCase();
    const q = text.value.trim().toLowerCase();
    const shown = events.filter((e) => (!t || e.type === t)
      && (!subj || (e.subject || '').toLowerCase().includes(subj))
      && (!q || (e.message || '').toLowerCase().includes(q)));
    count.textContent = `${shown.length} of ${events.length} shown${paused ? ' · paused' : ' · live'}`;
    replace(list, table(['#', 'time', 'type', 'subject', 'message'], shown.slice().reverse().slice(0, 500).map((e) =>
      h('tr', {'data-seq': e.seq, 'data-type': e.type}, h('td', {class: 'num'}, e.seq), h('td', {class: 'nowrap'}, time(e.at)),
        h('td', {}, e.type), h('td', {}, e.subject || ''), h('td', {}, e.message))), {id: 'events', class: 'grid'}));
  }

  return {
    async refresh() {
      if (paused) return;
      let got;
      try {
        got = await get(lastSeq ? `/v1/events?after=${lastSeq}&limit=1000` : '/v1/events?limit=500');
      } catch (e) {
        if (e instanceof ApiError && !e.needsSignIn) replace(list, pageError(e));
        throw e;
      }
      for (const e of got.events) {
        if (e.seq > lastSeq) {
          events.push(e);
          lastSeq = e.seq;
          if (!types.has(e.type)) {
            types.add(e.type);
            const opts = [...types].sort();
            const keep = type.value;
            replace(type, h('option', {value: ''}, 'all types'), opts.map((o) => h('option', {value: o}, o)));
            type.value = keep;
          }
        }
      }
      if (events.length > KEEP) events.splice(0, events.length - KEEP);
      render();
    },
  };
}
