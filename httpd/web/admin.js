// The operator's page: sign in with a token (kept in this tab's session storage and sent as
// Authorization, never in a URL), events with stock bars that move live (the change stream,
// read with fetch() because EventSource cannot send a header), create and edit events, close,
// reopen and cancel, the report, and the bookings with filters, confirm and cancel.
import {
  api, el, clear, money, localTime, toLocalInput, fromLocalInput,
} from './api.js';

const TOKEN_KEY = 'booking.token';
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const live = document.getElementById('live');
const announce = (text) => { document.getElementById('announce').textContent = text; };
let token = sessionStorage.getItem(TOKEN_KEY);
let openMode = false;
let leave = () => {};
const listeners = new Set();  // the current view's handlers of changes
const call = (method, path, opts = {}) => api(method, path, { ...opts, token });
const enc = encodeURIComponent;

function problem(text) {
  return el('p', { class: 'error', role: 'alert' }, text);
}
function apiProblem(error) {
  if (error.code === 'unauthorized') {
    signOut('Your token is no longer valid; sign in again.');
    return problem('Your token is no longer valid.');
  }
  if (error.code === 'forbidden') return problem('Your token’s role cannot do this (it needs an admin token).');
  if (error.code === 'precondition_failed') {
    return problem('Someone else changed this event since you opened it. Reload to see their change, then try again.');
  }
  if (error.code === 'network') return problem('The server cannot be reached. Check that bookingd is running.');
  return problem(error.message || error.code);
}

// --- signing in -------------------------------------------------------------------------------

async function start() {
  nav.hidden = true;
  // Without a token, an open-mode server (no tokens at all, loopback) lets this page in.
  const probe = await call('GET', '/v1/api/changes?after=latest&limit=1');
  if (probe.ok) {
    openMode = !token;
    return signedIn();
  }
  if (token) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
  }
  signInPage(probe.error && probe.error.code === 'forbidden'
    ? 'That token cannot use this page: it needs the admin or sales role.' : '');
}

function signInPage(message) {
  document.title = 'Sign in · Box office';
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'off', required: true,
    'aria-describedby': 'token-help' });
  const errors = el('div', { id: 'signin-error' }, message ? problem(message) : null);
  const form = el('form', { class: 'signin', id: 'signin', onsubmit: async (e) => {
    e.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) return clear(errors, problem('Paste a token first.'));
    const probe = await api('GET', '/v1/api/changes?after=latest&limit=1', { token: candidate });
    if (!probe.ok) {
      const why = probe.error.code === 'unauthorized' ? 'That token is unknown or was revoked.'
        : probe.error.code === 'forbidden' ? 'That token cannot use this page: it needs the admin or sales role.'
          : 'The server cannot check the token right now.';
      input.setAttribute('aria-invalid', 'true');
      return clear(errors, problem(why));
    }
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    openMode = false;
    signedIn();
  } },
  el('h1', {}, 'Sign in'),
  el('label', { for: 'token' }, 'API token'), input,
  el('p', { id: 'token-help', class: 'muted small' },
    'Create one on the server with: booking token create NAME --role admin. It stays in this tab only.'),
  errors,
  el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Sign in')));
  clear(main, form);
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  stopStream();
  leave();
  nav.hidden = true;
  location.hash = '#/';
  signInPage(message || '');
}

function signedIn() {
  nav.hidden = false;
  document.getElementById('signout').hidden = openMode;
  follow();
  route();
}

// --- the change stream --------------------------------------------------------------------------

let stream = null;
let after = 'latest';
function stopStream() {
  if (stream) stream.abort();
  stream = null;
  after = 'latest';
}
function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}
async function follow() {
  stopStream();
  const ctl = new AbortController();
  stream = ctl;
  for (;;) {
    try {
      const res = await fetch('/v1/api/changes/stream?after=' + after, {
        headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: ctl.signal, cache: 'no-store',
      });
      if (res.status === 401) return signOut('Your token is no longer valid; sign in again.');
      if (!res.ok) throw new Error('status ' + res.status);
      setLive('live', 'Live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          onBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (ctl.signal.aborted) return;
    setLive('down', 'Reconnecting…');
    await new Promise((r) => setTimeout(r, 2000));
    if (ctl.signal.aborted) return;
  }
}
function onBlock(block) {
  let data = '';
  for (const line of block.split('\n')) {
    const m = /^: changes after (\d+)$/.exec(line);
    if (m) after = m[1];  // where this stream started: a reconnection resumes there
    if (line.startsWith('id: ')) after = line.slice(4);
    if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  let change;
  try {
    change = JSON.parse(data);
  } catch (e) {
    return;
  }
  for (const f of listeners) f(change);
}
// Calls refresh(key) at most every 300 ms per key while changes come in.
function debounced(refresh) {
  const timers = new Map();
  return (key) => {
    if (timers.has(key)) return;
    timers.set(key, setTimeout(() => { timers.delete(key); refresh(key); }, 300));
  };
}

// --- views --------------------------------------------------------------------------------------

function route() {
  leave();
  leave = () => {};
  listeners.clear();
  const hash = decodeURIComponent(location.hash.slice(1));
  let m;
  if (hash === '/new') editPage(null);
  else if ((m = /^\/e\/(.+)\/edit$/.exec(hash))) editPage(m[1]);
  else if ((m = /^\/e\/(.+)$/.exec(hash))) eventPage(m[1]);
  else eventsPage();
  main.focus({ preventScroll: true });
}

// A booking id for a table: its last 8 hex digits (random; its first ones are its time, which
// bookings made in the same minute share). The whole id is in the title and in dialogs.
const shortId = (id) => '…' + id.slice(-8);

function badge(status) {
  const text = { on_sale: 'On sale', closed: 'Closed', cancelled: 'Cancelled' }[status] || status;
  return el('span', { class: 'badge', 'data-status': status }, text);
}

// A tier's stock bar; fillTier() sets its numbers, so that a live page moves the bar it shows
// (its width eases) instead of drawing a new one.
function tierStock(g) {
  const node = el('div', { class: 'tier-stock', 'data-tier': g.key },
    el('div', { class: 'stock-label' }, el('span', { class: 'category' }),
      el('span', { class: 'muted counts' })),
    el('div', { class: 'bar', role: 'img' }, el('div', { class: 'sold' }), el('div', { class: 'held' })));
  fillTier(node, g);
  return node;
}
function fillTier(node, g) {
  const cap = g.capacity || 0;
  const words = `${g.sold} sold, ${g.held} held, ${g.qty} left of ${cap}`;
  node.querySelector('.category').textContent = g.category;
  node.querySelector('.counts').textContent = words;
  node.querySelector('.bar').setAttribute('aria-label', `${g.category}: ${words}`);
  node.querySelector('.sold').style.width = cap ? `${(100 * g.sold) / cap}%` : '0';
  node.querySelector('.held').style.width = cap ? `${(100 * g.held) / cap}%` : '0';
}
function stockBars(event) {
  return el('div', { class: 'stock' }, event.eventGroups.map(tierStock));
}
// Brings bars drawn by stockBars() up to date in place; draws them again if the tiers changed.
function updateStock(stock, event) {
  const nodes = [...stock.querySelectorAll('.tier-stock')];
  const same = nodes.length === event.eventGroups.length &&
    event.eventGroups.every((g, i) => nodes[i].dataset.tier === g.key);
  if (!same) return clear(stock, event.eventGroups.map(tierStock));
  event.eventGroups.forEach((g, i) => fillTier(nodes[i], g));
  return stock;
}
const legend = () => el('p', { class: 'legend', 'aria-hidden': 'true' },
  el('span', { class: 'l-sold' }, 'sold'), el('span', { class: 'l-held' }, 'held'),
  el('span', { class: 'l-free' }, 'available'));

async function eventsPage() {
  document.title = 'Events · Box office';
  const cards = el('div', { class: 'cards', id: 'events' });
  clear(main,
    openMode ? el('p', { class: 'notice', id: 'open-mode' },
      'Open mode: this server has no API tokens, so anyone who can reach it from this machine is an operator. ',
      'Create a token (booking token create NAME --role admin) before serving others.') : null,
    el('h1', {}, 'Events'), legend(), cards);
  const r = await call('GET', '/v1/api/events?limit=100');
  if (!r.ok) return cards.replaceWith(apiProblem(r.error));
  if (r.data.length === 0) {
    cards.append(el('p', {}, 'No events yet. ', el('a', { href: '#/new' }, 'Create one.')));
  }
  const meta = (e) => [badge(e.status), ' ', e.key, ' · ', localTime(e.date, e.utcOffset)];
  const card = (e) => el('article', { class: 'card', 'data-event': e.key },
    el('h2', {}, el('a', { href: '#/e/' + enc(e.key) }, e.name)),
    el('p', { class: 'muted small meta' }, meta(e)),
    stockBars(e));
  for (const e of r.data) cards.append(card(e));
  if (r.next) main.append(el('p', { class: 'muted' }, 'The first 100 events are shown.'));
  const refresh = debounced(async (key) => {
    const again = await call('GET', '/v1/api/events/' + enc(key));
    const old = cards.querySelector(`[data-event="${CSS.escape(key)}"]`);
    if (!again.ok) return;
    if (!old) return cards.prepend(card(again.data));  // created since the page was loaded
    // In place: a link or button the operator has focused stays focused as holds come in.
    const e = again.data;
    const link = old.querySelector('h2 a');
    if (link.textContent !== e.name) link.textContent = e.name;
    clear(old.querySelector('.meta'), meta(e));
    updateStock(old.querySelector('.stock'), e);
  });
  listeners.add((c) => c.eventKey && refresh(c.eventKey));
}

// Asks in the page's dialog; resolves true when confirmed.
function ask(title, text, okLabel, extra = null, danger = true) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  clear(document.getElementById('confirm-extra'), extra);
  const ok = document.getElementById('confirm-ok');
  ok.textContent = okLabel;
  ok.className = danger ? 'danger' : '';
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

async function eventPage(key) {
  const r = await call('GET', '/v1/api/events/' + enc(key));
  if (!r.ok) return clear(main, el('h1', {}, 'Event'), apiProblem(r.error));
  let event = r.data;
  document.title = event.name + ' · Box office';
  const head = el('div');
  const stock = el('section', { 'aria-labelledby': 'stock-title' });
  const report = el('section', { 'aria-labelledby': 'report-title' });
  const bookings = el('section', { 'aria-labelledby': 'bookings-title' });
  const errors = el('div', { id: 'event-error' });
  clear(main, el('p', {}, el('a', { href: '#/' }, '← Events')), head, errors, stock, report, bookings);

  const renderHead = () => clear(head,
    el('h1', {}, event.name, ' ', badge(event.status)),
    el('p', { class: 'muted' }, `${event.key} · ${localTime(event.date, event.utcOffset)}`,
      event.location && event.location.venue ? ` · ${event.location.venue}` : ''),
    el('div', { class: 'actions' },
      event.status !== 'cancelled' ? el('a', { class: 'button secondary-link', href: `#/e/${enc(event.key)}/edit`, id: 'edit' }, 'Edit event') : null,
      event.status === 'on_sale' ? el('button', { type: 'button', id: 'close', class: 'secondary', onclick: () => status('close') }, 'Close sale') : null,
      event.status === 'closed' ? el('button', { type: 'button', id: 'reopen', onclick: () => status('reopen') }, 'Reopen sale') : null,
      event.status !== 'cancelled' ? el('button', { type: 'button', id: 'cancel-event', class: 'danger', onclick: () => status('cancel') }, 'Cancel event') : null));
  const renderStock = () => {
    const bars = stock.querySelector('.stock');
    if (bars) updateStock(bars, event);
    else clear(stock, el('h2', { id: 'stock-title' }, 'Stock'), legend(), stockBars(event));
  };

  async function status(action) {
    const words = {
      close: ['Close the sale?', 'No new holds will be taken until you reopen it. Existing holds and bookings stay.', 'Close sale'],
      reopen: ['Reopen the sale?', 'Buyers can hold tickets again.', 'Reopen sale'],
      cancel: ['Cancel this event?', 'Every booking of it is cancelled, and it cannot be undone.', 'Cancel event'],
    }[action];
    if (!(await ask(words[0], words[1], words[2], null, action !== 'reopen'))) return;
    const res = await call('POST', `/v1/api/events/${enc(key)}/${action}`, {
      body: {}, headers: { 'If-Match': `"${event.version}"` } });
    if (!res.ok) return clear(errors, apiProblem(res.error));
    event = res.data;
    let said = `The event is now ${event.status.replace('_', ' ')}.`;
    if (action === 'cancel') {
      const n = event.bookingsCancelled || 0;
      said = `The event is cancelled; ${n} booking${n === 1 ? ' was' : 's were'} cancelled with it.`;
    }
    clear(errors, action === 'cancel' ? el('p', { class: 'notice', id: 'cancelled-note' }, said) : null);
    renderHead();
    renderStock();
    announce(said);
    loadReport();
    loadBookings(null);
  }

  async function loadReport() {
    const res = await call('GET', `/v1/api/events/${enc(key)}/report`);
    if (!res.ok) return clear(report, el('h2', { id: 'report-title' }, 'Report'), apiProblem(res.error));
    const rep = res.data;
    const names = Object.fromEntries(event.eventGroups.map((g) => [g.key, g.category]));
    clear(report, el('h2', { id: 'report-title' }, 'Report'),
      el('div', { class: 'table-wrap' }, el('table', { id: 'report', class: 'stack' },
        el('thead', {}, el('tr', {}, ['Tier', 'Capacity', 'Available', 'Held', 'Sold', 'Cancelled', 'Expired', 'Revenue']
          .map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rep.tiers.map((t) => el('tr', {},
          el('th', { scope: 'row' }, names[t.key] || t.key),
          ...[['Capacity', t.capacity], ['Available', t.available], ['Held', t.held], ['Sold', t.sold],
            ['Cancelled', t.cancelled], ['Expired', t.expired], ['Revenue', money(t.revenue, t.currency)]]
            .map(([label, v]) => el('td', { 'data-label': label }, v))))),
        el('tfoot', {}, rep.totals.map((t) => el('tr', {},
          el('th', { scope: 'row', colspan: 7 }, `Total (${t.currency}, ${t.sold} sold)`),
          el('td', { class: 'revenue', 'data-label': 'Revenue' }, money(t.revenue, t.currency))))))));
  }

  // Bookings, newest pages by cursor; filters by status and user.
  const statusFilter = el('select', { id: 'filter-status' },
    ['', 'HELD', 'CONFIRMED', 'CANCELLED', 'EXPIRED'].map((s) => el('option', { value: s }, s || 'Any')));
  const userFilter = el('input', { id: 'filter-user', type: 'search', autocomplete: 'off' });
  const table = el('tbody');
  const pager = el('div', { class: 'actions' });
  const cursors = [];
  const tierNames = () => Object.fromEntries(event.eventGroups.map((g) => [g.key, g.category]));
  let asked = 0;  // the latest table request: an older answer arriving later is dropped
  async function loadBookings(cursor) {
    const mine = ++asked;
    const names = tierNames();
    let q = `/v1/api/books?limit=20&event=${enc(key)}`;
    if (statusFilter.value) q += `&status=${enc(statusFilter.value)}`;
    if (userFilter.value.trim()) q += `&userId=${enc(userFilter.value.trim())}`;
    if (cursor) q += `&cursor=${enc(cursor)}`;
    const res = await call('GET', q);
    if (mine !== asked) return;
    if (!res.ok) return clear(table, el('tr', {}, el('td', { colspan: 7 }, apiProblem(res.error))));
    const cell = (label, ...content) => el('td', { 'data-label': label }, ...content);
    clear(table, res.data.length === 0 ? el('tr', {}, el('td', { colspan: 7 }, 'No bookings match.')) : null,
      res.data.map((b) => el('tr', { 'data-booking': b.bookId },
        cell('Booking', el('code', { title: b.bookId }, shortId(b.bookId))),
        cell('Status', b.status), cell('User', b.userId || '—'),
        cell('Tickets', b.groupKeys.map((l) => `${l.qty} × ${names[l.key] || l.key}`).join(', ')),
        cell('Total', money(b.price, b.currency)),
        cell('Created', localTime(b.createdAt, event.utcOffset)),
        cell('Actions',
          b.status === 'HELD' ? el('button', { type: 'button', class: 'small', onclick: () => confirmBooking(b),
            'aria-label': `Confirm booking ${shortId(b.bookId)}` }, 'Confirm') : null, ' ',
          b.status === 'HELD' || b.status === 'CONFIRMED'
            ? el('button', { type: 'button', class: 'small secondary', onclick: () => cancelBooking(b),
              'aria-label': `Cancel booking ${shortId(b.bookId)}` }, 'Cancel') : null))));
    clear(pager,
      cursors.length ? el('button', { type: 'button', class: 'secondary', id: 'prev-page', onclick: () => { cursors.pop(); loadBookings(cursors[cursors.length - 1] || null); } }, 'Previous page') : null,
      res.next ? el('button', { type: 'button', class: 'secondary', id: 'next-page', onclick: () => { cursors.push(res.next); loadBookings(res.next); } }, 'Next page') : null);
  }
  async function confirmBooking(b) {
    const method = el('input', { id: 'pay-method', value: 'cash' });
    const reference = el('input', { id: 'pay-reference', value: '' });
    const extra = el('div', { class: 'grid' },
      el('div', {}, el('label', { for: 'pay-method' }, 'Payment method'), method),
      el('div', {}, el('label', { for: 'pay-reference' }, 'Reference'), reference));
    if (!(await ask('Confirm this booking as paid?', `Booking ${b.bookId}, ${money(b.price, b.currency)}.`, 'Confirm', extra, false))) return;
    const res = await call('POST', `/v1/api/books/${enc(b.bookId)}/confirm`,
      { body: { paymentMethod: method.value || 'manual', reference: reference.value } });
    if (!res.ok) return clear(errors, apiProblem(res.error));
    clear(errors);
    announce('Booking confirmed.');
    loadBookings(cursors[cursors.length - 1] || null);
  }
  async function cancelBooking(b) {
    if (!(await ask('Cancel this booking?', `Booking ${b.bookId}: its tickets go back on sale.`, 'Cancel booking'))) return;
    const res = await call('POST', `/v1/api/books/${enc(b.bookId)}/cancel`, { body: {} });
    if (!res.ok) return clear(errors, apiProblem(res.error));
    clear(errors);
    announce('Booking cancelled.');
    loadBookings(cursors[cursors.length - 1] || null);
  }
  clear(bookings, el('h2', { id: 'bookings-title' }, 'Bookings'),
    el('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); cursors.length = 0; loadBookings(null); } },
      el('div', {}, el('label', { for: 'filter-status' }, 'Status'), statusFilter),
      el('div', {}, el('label', { for: 'filter-user' }, 'User id'), userFilter),
      el('button', { type: 'submit', id: 'filter' }, 'Show'),
      el('a', { href: `/v1/api/events/${enc(key)}/bookings.csv`, class: 'muted', id: 'csv',
        onclick: (e) => { if (token) { e.preventDefault(); download(); } } }, 'Download CSV')),
    el('div', { class: 'table-wrap' }, el('table', { id: 'bookings', class: 'stack' },
      el('thead', {}, el('tr', {}, ['Booking', 'Status', 'User', 'Tickets', 'Total', 'Created', 'Actions']
        .map((h) => el('th', { scope: 'col' }, h)))), table)), pager);
  // With a token the CSV is fetched with the header and saved from memory: no token in a URL.
  async function download() {
    const res = await fetch(`/v1/api/events/${enc(key)}/bookings.csv`, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return clear(errors, problem('The export failed (' + res.status + ').'));
    const url = URL.createObjectURL(await res.blob());
    const a = el('a', { href: url, download: `${key}-bookings.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  renderHead();
  renderStock();
  loadReport();
  loadBookings(null);
  const refresh = debounced(async () => {
    const again = await call('GET', '/v1/api/events/' + enc(key));
    if (!again.ok) return;
    const changed = again.data.version !== event.version;
    event = again.data;
    if (changed) renderHead();  // not on stock changes: a focused button stays where it is
    renderStock();
    loadReport();
  });
  listeners.add((c) => c.eventKey === key && refresh(key));
}

// --- create and edit ----------------------------------------------------------------------------

const TIER_FIELDS = [
  ['key', 'Tier key', 'text'], ['category', 'Name', 'text'], ['price', 'Price', 'text'],
  ['currency', 'Currency', 'text'], ['capacity', 'Capacity', 'number'],
  ['startDate', 'Sale opens', 'datetime-local'], ['endDate', 'Sale ends', 'datetime-local'],
  ['maxPerOrder', 'Max per order', 'number'], ['maxPerUser', 'Max per buyer', 'number'],
];
const KEY_RE = /^[A-Za-z0-9._-]{1,64}$/;

async function editPage(key) {
  let event = null;
  if (key) {
    const r = await call('GET', '/v1/api/events/' + enc(key));
    if (!r.ok) return clear(main, el('h1', {}, 'Edit event'), apiProblem(r.error));
    event = r.data;
  }
  document.title = (event ? 'Edit ' + event.name : 'New event') + ' · Box office';
  const fields = new Map();  // API field path -> input
  let tierCount = 0;
  const summary = el('div', { id: 'form-errors', tabindex: '-1' });
  const field = (path, label, type, value, attrs = {}) => {
    const id = 'f-' + path.replace(/[^A-Za-z0-9]/g, '-');
    const input = el('input', { id, name: path, type, value: value ?? '', 'aria-describedby': id + '-error', ...attrs });
    fields.set(path, input);
    return el('div', { class: 'field' }, el('label', { for: id }, label), input,
      el('p', { class: 'field-error', id: id + '-error', 'aria-live': 'polite' }));
  };
  const offset = event ? event.utcOffset : '+00:00';
  const tiers = el('div', { id: 'tiers' });
  const addTier = (g) => {
    const i = tierCount++;
    const existing = !!g;
    const value = (f) => {
      if (!g) return f === 'currency' ? (event && event.eventGroups[0] ? event.eventGroups[0].currency : 'USD') : f === 'maxPerOrder' ? 10 : '';
      if (f === 'startDate' || f === 'endDate') return toLocalInput(g[f], offset);
      return g[f] ?? '';
    };
    tiers.append(el('fieldset', { class: 'tier', 'data-index': i },
      el('legend', {}, existing ? `Tier: ${g.category}` : 'New tier'),
      el('div', { class: 'grid' }, TIER_FIELDS.map(([f, label, type]) =>
        field(`eventGroups[${i}].${f}`, label, type, value(f),
          f === 'key' && existing ? { readonly: true } : type === 'number' ? { min: f === 'capacity' ? 0 : 1, step: 1 } : {})))));
  };
  if (event) event.eventGroups.forEach(addTier);
  else addTier(null);

  const form = el('form', { id: 'event-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(); } },
    el('h1', {}, event ? `Edit ${event.name}` : 'New event'),
    summary,
    el('fieldset', {}, el('legend', {}, 'Event'),
      el('div', { class: 'grid' },
        field('key', 'Event key', 'text', event ? event.key : '', event ? { readonly: true } : { required: true }),
        field('name', 'Name', 'text', event ? event.name : '', { required: true, maxlength: 200 }),
        field('type', 'Type', 'text', event ? event.type : 'Concert', { required: true }),
        field('promoter', 'Promoter', 'text', event ? event.promoter : ''),
        field('date', 'Starts (event’s local time)', 'datetime-local', event ? toLocalInput(event.date, offset) : '', { required: true }),
        field('utcOffset', 'UTC offset', 'text', offset, { pattern: '[+-][0-9]{2}:[0-9]{2}', placeholder: '+07:00' }),
        field('location.venue', 'Venue', 'text', event && event.location ? event.location.venue : ''),
        field('location.address', 'Address', 'text', event && event.location ? event.location.address : ''))),
    tiers,
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', id: 'add-tier', onclick: () => addTier(null) }, 'Add a tier'),
      el('button', { type: 'submit', id: 'save' }, event ? 'Save changes' : 'Create event'),
      el('a', { href: event ? `#/e/${enc(event.key)}` : '#/', class: 'button secondary-link' }, 'Back')));
  clear(main, form);

  const v = (path) => (fields.get(path) ? fields.get(path).value.trim() : '');
  const showErrors = (details, message) => {
    for (const [path, input] of fields) {
      input.removeAttribute('aria-invalid');
      document.getElementById(input.id + '-error').textContent = '';
    }
    const unplaced = [];
    for (const [path, text] of Object.entries(details)) {
      // A new event's tier states its capacity as qty; the form calls it capacity.
      const input = fields.get(path) || fields.get(path.replace(/\.qty$/, '.capacity'));
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        document.getElementById(input.id + '-error').textContent = text;
      } else {
        unplaced.push(`${path}: ${text}`);
      }
    }
    const count = Object.keys(details).length;
    clear(summary, count || message ? el('div', { class: 'error', role: 'alert' },
      el('p', {}, message || `Please correct ${count} field${count === 1 ? '' : 's'}.`),
      unplaced.length ? el('ul', {}, unplaced.map((u) => el('li', {}, u))) : null) : null);
    if (count || message) summary.focus();
  };

  // The API's rules, checked here first so that most mistakes need no round trip; the API
  // checks them again and its details land on the same fields.
  const check = (body) => {
    const p = {};
    if (!KEY_RE.test(body.key || '')) p.key = 'must match [A-Za-z0-9._-]{1,64}';
    if (!body.name) p.name = 'must not be empty';
    if (!body.type) p.type = 'is required';
    if (!v('date')) p.date = 'is required';
    if (!/^[+-]\d\d:\d\d$/.test(v('utcOffset'))) p.utcOffset = 'must look like +07:00';
    body.eventGroups.forEach((g, i) => {
      const f = `eventGroups[${i}].`;
      if (!KEY_RE.test(g.key || '')) p[f + 'key'] = 'must match [A-Za-z0-9._-]{1,64}';
      if (!g.category) p[f + 'category'] = 'is required';
      if (g.price === '' || !/^\d+(\.\d+)?$/.test(g.price)) p[f + 'price'] = 'must be a number >= 0';
      if (!/^[A-Z]{3}$/.test(g.currency || '')) p[f + 'currency'] = 'must be a 3-letter code such as USD';
      if (!Number.isInteger(g.capacity) || g.capacity < 0) p[f + 'capacity'] = 'must be >= 0';
      if (!g.startDate) p[f + 'startDate'] = 'is required';
      if (!g.endDate) p[f + 'endDate'] = 'is required';
      else if (g.startDate && Date.parse(g.endDate) <= Date.parse(g.startDate)) p[f + 'endDate'] = 'must be after startDate';
      for (const lim of ['maxPerOrder', 'maxPerUser']) {
        if (g[lim] !== null && (!Number.isInteger(g[lim]) || g[lim] < 1)) p[f + lim] = 'must be >= 1';
      }
    });
    return p;
  };

  async function submit() {
    const off = v('utcOffset');
    const int = (s) => (s === '' ? null : Number(s));
    const body = {
      key: v('key'), name: v('name'), type: v('type'), promoter: v('promoter') || null,
      date: fromLocalInput(v('date'), off), utcOffset: off,
      location: { venue: v('location.venue'), address: v('location.address') },
      eventGroups: [],
    };
    for (let i = 0; i < tierCount; i++) {
      const t = (f) => v(`eventGroups[${i}].${f}`);
      body.eventGroups.push({
        key: t('key'), category: t('category'), price: t('price'), currency: t('currency').toUpperCase(),
        capacity: int(t('capacity')), startDate: fromLocalInput(t('startDate'), off),
        endDate: fromLocalInput(t('endDate'), off), maxPerOrder: int(t('maxPerOrder')), maxPerUser: int(t('maxPerUser')),
      });
    }
    const problems = check(body);
    if (Object.keys(problems).length) return showErrors(problems);
    let res;
    if (event) {
      res = await call('PATCH', '/v1/api/events/' + enc(event.key), {
        body, headers: { 'Content-Type': 'application/merge-patch+json', 'If-Match': `"${event.version}"` } });
    } else {
      body.eventGroups.forEach((g) => { g.qty = g.capacity; });
      res = await call('POST', '/v1/api/events', { body });
    }
    if (!res.ok) {
      if (res.error.code === 'validation_failed' && res.error.details) return showErrors(res.error.details);
      if (res.error.code === 'duplicate_key') return showErrors({ key: 'is taken by another event or tier' }, res.error.message);
      return clear(summary, apiProblem(res.error));
    }
    announce(event ? 'Saved.' : 'Event created.');
    location.hash = '#/e/' + enc(res.data.key);
  }
}

document.getElementById('signout').addEventListener('click', () => signOut(''));
window.addEventListener('hashchange', () => { if (!nav.hidden) route(); });
start();
