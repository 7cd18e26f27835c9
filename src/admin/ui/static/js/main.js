// Entry point: loads the session, then renders the page the URL hash names.
// Routes: #/overview, #/events?filters, #/events/<id>, #/alerts, #/alerts/<id>, #/chain.
import { loadSession, signOut, ApiProblem } from './api.js';
import { h, mount, notice } from './dom.js';
import { renderOverview } from './pages/overview.js';
import { renderEvents } from './pages/events.js';
import { renderEvent } from './pages/event-detail.js';
import { renderAlerts } from './pages/alerts.js';
import { renderAlert } from './pages/alert-detail.js';
import { renderChain } from './pages/chain.js';

const main = document.getElementById('main');
let generation = 0;

/** The route of a hash: { page, id, params }. */
export function parseHash(hash) {
  const raw = hash.startsWith('#/') ? hash.slice(2) : 'overview';
  const [path, query = ''] = raw.split('?', 2);
  const [page, id] = path.split('/').map((s) => decodeURIComponent(s));
  return { page: page || 'overview', id, params: new URLSearchParams(query) };
}

const PAGES = {
  overview: (r, ctx) => renderOverview(main, r.params, ctx),
  events: (r, ctx) => (r.id ? renderEvent(main, r.id, ctx) : renderEvents(main, r.params, ctx)),
  alerts: (r, ctx) => (r.id ? renderAlert(main, r.id, ctx) : renderAlerts(main, r.params, ctx)),
  chain: (_r, ctx) => renderChain(main, ctx),
};

async function route() {
  // In-page anchors (the skip link) are not routes.
  if (window.location.hash && !window.location.hash.startsWith('#/')) return;
  const r = parseHash(window.location.hash);
  const render = PAGES[r.page];
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === r.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const mine = ++generation;
  // A slower earlier render must not overwrite a newer page.
  const ctx = { current: () => mine === generation };
  if (!render) {
    mount(main, h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/overview' }, 'Go to the overview.')));
    return;
  }
  main.setAttribute('aria-busy', 'true');
  try {
    await render(r, ctx);
  } catch (err) {
    if (!ctx.current()) return;
    if (err instanceof ApiProblem && err.status === 401) return;
    mount(main, h('h1', {}, 'Something went wrong'), notice('error', err instanceof ApiProblem ? `${err.message} (${err.problem.code ?? err.status})` : String(err)));
  } finally {
    if (ctx.current()) main.removeAttribute('aria-busy');
  }
}

async function start() {
  document.getElementById('sign-out')?.addEventListener('click', () => { void signOut(); });
  document.getElementById('skip-link')?.addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  let session;
  try {
    session = await loadSession();
  } catch {
    return; // 401: on the way to the sign-in page
  }
  const who = document.getElementById('who');
  if (who) who.textContent = session.via === 'spiffe' ? `signed in as ${session.spiffeId}` : 'signed in with the admin token';
  window.addEventListener('hashchange', () => {
    void route().then(() => {
      // Move focus to the new content for keyboard and screen-reader users.
      if (window.location.hash.startsWith('#/')) main.focus({ preventScroll: true });
    });
  });
  await route();
}

void start();
