// The dashboard shell: hash routes, one polling loop, the connection banner and sign-in.
// Each page is a module with mount(main, params) returning {refresh()}; the loop calls refresh
// about once a second, so the page follows the cluster without a reload.
import {onHealth, setToken, token, get, ApiError, Unreachable} from './api.js';
import {h, replace} from './dom.js';
import {action} from './dialog.js';
import {setRefresher, refreshNow, notify} from './live.js';
import {clusterPage} from './cluster.js';
import {volumesPage} from './volumes.js';
import {volumePage} from './volume.js';
import {topologyPage} from './topology.js';
import {eventsPage} from './events.js';

const POLL_MS = 1000;

const routes = {
  cluster: clusterPage,
  volumes: volumesPage,
  volume: volumePage,
  topology: topologyPage,
  events: eventsPage,
};

let current = null;
let generation = 0;
let timer = null;
let running = false;
let again = false;
let lastOk = null;

function parseHash() {
  const parts = (location.hash || '#/cluster').replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const page = routes[parts[0]] ? parts[0] : 'cluster';
  return {page, params: parts.slice(1)};
}

function show() {
  const {page, params} = parseHash();
  generation++;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page || (page === 'volume' && a.dataset.page === 'volumes'));
  }
  const main = document.getElementById('main');
  replace(main);
  current = routes[page](main, params);
  refresh();
}

/**
 * Runs the current page's refresh now, or right after the one in flight: one chain of polls at a
 * time, however often actions and page changes ask for a refresh.
 */
async function refresh() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  const gen = generation;
  try {
    await current.refresh();
  } catch (e) {
    // the banner (onHealth) shows connection and sign-in problems; pages keep their last data
    if (!(e instanceof ApiError || e instanceof Unreachable)) {
      console.error(e);
    }
  } finally {
    running = false;
  }
  const soon = again || gen !== generation;
  again = false;
  timer = setTimeout(refresh, soon ? 0 : POLL_MS);
}

function banner(ok, err) {
  const b = document.getElementById('api-status');
  if (!ok) {
    b.hidden = false;
    b.className = 'banner unreachable';
    b.dataset.state = 'unreachable';
    replace(b, h('strong', {}, 'The Ballast API is unreachable'),
      ` at ${location.origin}: ${err.message}. `,
      lastOk ? `Showing what it last said at ${lastOk.toLocaleTimeString()}; retrying every second.` : 'Retrying every second.');
    return;
  }
  if (err && err.needsSignIn) {
    b.hidden = false;
    b.className = 'banner signin';
    b.dataset.state = 'signin';
    replace(b, h('strong', {}, 'Sign in'),
      ` — the API refused the dashboard (HTTP ${err.status} ${err.code}): ${err.message} `,
      h('button', {type: 'button', class: 'primary', onclick: signIn}, 'Sign in with an API token'));
    return;
  }
  lastOk = new Date();
  if (b.dataset.state) {
    b.hidden = true;
    delete b.dataset.state;
  }
}

function signIn() {
  action({
    title: 'Sign in',
    text: 'Paste an API token. It is kept in this browser tab only (session storage) and sent to this node as a bearer token.',
    fields: [{name: 'token', label: 'API token', type: 'password', value: '', required: true}],
    confirm: 'Sign in',
    run: async (v) => {
      const previous = token();
      setToken(v.token);
      try {
        await get('/v1/cluster?stale=true');
      } catch (e) {
        setToken(previous);
        throw e;
      }
    },
    onDone: () => { updateSignInButton(); showServedBy(); refreshNow(); },
  });
}

function updateSignInButton() {
  const btn = document.getElementById('sign-in');
  btn.textContent = token() ? 'Sign out' : 'Sign in';
}

document.getElementById('sign-in').addEventListener('click', () => {
  if (token()) {
    setToken('');
    updateSignInButton();
    notify('Signed out: the token is forgotten by this tab.');
    refreshNow();
  } else {
    signIn();
  }
});

setRefresher(refresh);
onHealth(banner);
window.addEventListener('hashchange', show);
updateSignInButton();
// asked again after signing in: without a token the first ask is refused
function showServedBy() {
  get('/v1/node').then((n) => {
    document.getElementById('served-by').textContent = 'served by ' + n.nodeId;
  }).catch(() => {});
}

showServedBy();
show();
