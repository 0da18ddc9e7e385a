// Celeriac dashboard: the entry point. A hash router (#/, #/queue/<name>, #/task/<id>,
// #/workers, #/schedules, #/dead, #/history, #/progress-example) mounts one page at a time, keeps the
// status line, and shows the token prompt when the gateway answers 401.

import { onUnauthorized, setToken } from './api.js';
import * as pages from './pages.js';

const routes = [
  [/^\/?$/, pages.overview],
  [/^\/queue\/([^/]+)$/, pages.queue],
  [/^\/task\/([^/]+)$/, pages.task],
  [/^\/workers$/, pages.workers],
  [/^\/schedules$/, pages.schedules],
  [/^\/dead(?:\/([^/]+))?$/, pages.dead],
  [/^\/history$/, pages.history],
  [/^\/progress-example$/, pages.progressExample],
];

const main = document.getElementById('app');
const status = document.getElementById('status');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token-input');

const ui = {
  ok() {
    status.className = 'status';
    status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  },
  say(text) {
    status.className = 'status';
    status.textContent = text;
  },
  error(error) {
    status.className = 'status error';
    status.textContent = error && error.message ? error.message : String(error);
  },
};

let stop = () => {};

function mount() {
  stop();
  const [path, search] = (location.hash.slice(1) || '/').split('?');
  const query = new URLSearchParams(search || '');
  for (const [pattern, page] of routes) {
    const match = path.match(pattern);
    if (match) {
      const params = match.slice(1).filter((p) => p !== undefined).map(decodeURIComponent);
      stop = page(main, params, query, ui) || (() => {});
      return;
    }
  }
  main.replaceChildren(Object.assign(document.createElement('p'), { textContent: 'No such page.' }));
  stop = () => {};
}

onUnauthorized(() => {
  tokenForm.hidden = false;
  tokenInput.focus();
});

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(tokenInput.value.trim());
  tokenInput.value = '';
  tokenForm.hidden = true;
  mount();
});

window.addEventListener('hashchange', mount);
mount();
