// Shared by the pages: ask the shell to refresh now (after an action), and show an action's outcome.
let refresher = () => {};

export function setRefresher(fn) {
  refresher = fn;
}

export function refreshNow() {
  refresher();
}

let hideTimer = null;
/** A short message under the header: kind ok, warn or error. */
export function notify(text, kind = 'ok') {
  const n = document.getElementById('notice');
  n.hidden = false;
  n.className = 'notice ' + kind;
  n.textContent = text;
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => { n.hidden = true; }, kind === 'error' ? 15000 : 8000);
}
