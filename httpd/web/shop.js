// The storefront: search events, an event's tiers with live availability, hold, and the
// booking page with its countdown. Pages are addressed by the URL's fragment (#/e/KEY,
// #/b/BOOKID), which never reaches a server log: a booking id is its buyer's key to it.
import { api, el, clear, money, localTime, buyerMessage } from './api.js';

const main = document.getElementById('main');
const announce = (text) => { document.getElementById('announce').textContent = text; };
let leave = () => {};  // stops the current page's timers when the page changes
let settings = { checkoutUrl: null, demoPayment: false };
// The server's clock minus this device's, measured once: sale windows and a hold's countdown go
// by the server's clock, as the holds do, not by a phone that may be minutes off.
let skew = 0;
const now = () => Date.now() + skew;

function route() {
  leave();
  leave = () => {};
  const hash = decodeURIComponent(location.hash.slice(1));
  let m;
  if ((m = /^\/e\/(.+)$/.exec(hash))) eventPage(m[1]);
  else if ((m = /^\/b\/(.+)$/.exec(hash))) bookingPage(m[1]);
  else searchPage();
  main.focus({ preventScroll: true });
}

function problem(text) {
  return el('p', { class: 'error', role: 'alert' }, text);
}

function saleWindow(tier, at) {
  const start = Date.parse(tier.startDate);
  const end = Date.parse(tier.endDate);
  if (at < start) return { open: false, text: 'Opens ' + localTime(tier.startDate, tier.utcOffset) };
  if (at >= end) return { open: false, text: 'Sale ended' };
  return { open: true, text: 'On sale until ' + localTime(tier.endDate, tier.utcOffset) };
}

// --- search ---------------------------------------------------------------------------------

function searchPage() {
  document.title = 'Tickets';
  const input = el('input', { id: 'q', type: 'search', autocomplete: 'off',
    placeholder: 'Artist, festival, venue…', 'aria-controls': 'results' });
  const results = el('ul', { id: 'results', class: 'results' });
  const count = el('p', { class: 'muted', id: 'count', role: 'status' });  // read out, not the list
  clear(main,
    el('h1', {}, 'Find tickets'),
    el('form', { role: 'search', class: 'search', onsubmit: (e) => e.preventDefault() },
      el('label', { for: 'q' }, 'Search events by name'), input),
    count, results);
  let timer = 0;
  let asked = 0;
  const run = async () => {
    const mine = ++asked;
    const r = await api('GET', '/v1/api/events?limit=50&name=' + encodeURIComponent(input.value.trim()));
    if (mine !== asked) return;  // a later keystroke's answer wins
    if (!r.ok) return clear(results, el('li', {}, problem(buyerMessage(r.error))));
    count.textContent = r.data.length === 0 ? 'No events match.' :
      `${r.data.length} event${r.data.length === 1 ? '' : 's'}`;
    clear(results, r.data.map((e) => {
      const prices = e.eventGroups.map((g) => Number(g.price));
      const from = e.eventGroups.length ? money(Math.min(...prices), e.eventGroups[0].currency) : '';
      const left = e.eventGroups.reduce((n, g) => n + g.qty, 0);
      return el('li', { class: 'result' },
        el('a', { href: '#/e/' + encodeURIComponent(e.key) }, e.name),
        el('span', { class: 'muted' }, localTime(e.date, e.utcOffset)),
        el('span', { class: 'muted' }, e.location && e.location.venue ? e.location.venue : ''),
        el('span', {}, e.status !== 'on_sale' ? statusText(e.status) :
          left === 0 ? 'Sold out' : from ? 'From ' + from : ''));
    }));
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 150); });
  run();
  input.focus();
}

function statusText(status) {
  return status === 'closed' ? 'Sales closed' : status === 'cancelled' ? 'Cancelled' : 'On sale';
}

// --- one event --------------------------------------------------------------------------------

async function eventPage(key) {
  const r = await api('GET', '/v1/api/events/' + encodeURIComponent(key));
  if (!r.ok) return clear(main, el('h1', {}, 'Event'), problem(buyerMessage(r.error)), back());
  let event = r.data;
  document.title = event.name + ' · Tickets';
  const names = Object.fromEntries(event.eventGroups.map((g) => [g.key, g.category]));
  const errors = el('div', { id: 'hold-error' });
  const banner = el('p', { id: 'event-status', class: 'banner', role: 'status' });
  const rows = new Map();  // tier key -> {tier, left cell, input, window's text}
  const tbody = el('tbody');
  const holdButton = el('button', { type: 'submit', id: 'hold' }, 'Hold tickets');
  const form = el('form', { id: 'buy', onsubmit: (e) => { e.preventDefault(); hold(); } },
    el('table', { class: 'tiers' },
      el('caption', { class: 'visually-hidden' }, 'Tickets and prices'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Ticket'), el('th', { scope: 'col' }, 'Price'),
        el('th', { scope: 'col' }, 'Available'), el('th', { scope: 'col' }, 'Quantity'))),
      tbody),
    errors, holdButton);

  let last = event;  // the latest availability: a 304 means it still holds
  const render = () => {
    clear(tbody);
    rows.clear();
    for (const g of event.eventGroups) {
      const max = Math.min(g.maxPerOrder || 10, 20);
      const input = el('input', { type: 'number', id: 'qty-' + g.key, min: 0, max, value: 0,
        inputmode: 'numeric', 'data-tier': g.key });
      const left = el('td', { class: 'left', 'data-tier': g.key });
      const when = el('small', { class: 'muted block window', 'data-tier': g.key });
      rows.set(g.key, { tier: g, left, input, when });
      tbody.append(el('tr', {},
        el('th', { scope: 'row' }, g.category, when,
          g.maxPerUser ? el('small', { class: 'muted block' }, `At most ${g.maxPerUser} per buyer`) : null),
        el('td', {}, money(g.price, g.currency)),
        left,
        el('td', {}, el('label', { for: 'qty-' + g.key, class: 'visually-hidden' }, 'Number of ' + g.category + ' tickets'), input)));
    }
    update(event);
  };
  // Stock and status as the availability endpoint gives them, and each tier's sale window as
  // of now: a page opened before a sale opens its tiers when the time comes.
  const update = (a) => {
    last = a;
    const at = now();
    let any = false;
    for (const g of a.eventGroups) {
      const row = rows.get(g.key);
      if (!row) continue;
      const w = saleWindow({ ...row.tier, utcOffset: event.utcOffset }, at);
      if (row.when.textContent !== w.text) row.when.textContent = w.text;
      const soldOut = g.qty <= 0;
      row.left.textContent = soldOut ? 'Sold out' : g.qty <= 10 ? `Only ${g.qty} left` : `${g.qty} left`;
      row.left.classList.toggle('soldout', soldOut);
      row.input.disabled = soldOut || !w.open || a.status !== 'on_sale';
      if (row.input.disabled) row.input.value = 0;
      any = any || !row.input.disabled;
    }
    const closed = a.status !== 'on_sale';
    banner.hidden = !closed;
    banner.textContent = a.status === 'closed' ? 'Sales for this event are closed.' :
      a.status === 'cancelled' ? 'This event has been cancelled.' : '';
    holdButton.disabled = !any;  // closed, sold out, or no window open now
  };

  clear(main,
    back(),
    el('h1', {}, event.name),
    el('p', { class: 'muted' }, [localTime(event.date, event.utcOffset),
      event.location && event.location.venue ? ' · ' + event.location.venue : '',
      event.location && event.location.address ? ', ' + event.location.address : ''].join('')),
    event.promoter ? el('p', { class: 'muted' }, 'Presented by ' + event.promoter) : null,
    banner, form);
  render();

  async function hold() {
    const groupKeys = [...rows].map(([k, row]) => ({ key: k, qty: Number(row.input.value) }))
      .filter((g) => g.qty > 0);
    if (groupKeys.length === 0) {
      return clear(errors, problem('Choose how many tickets you want first.'));
    }
    holdButton.disabled = true;
    holdButton.textContent = 'Holding…';
    const res = await api('POST', '/v1/api/books', { body: { key: event.key, groupKeys } });
    holdButton.textContent = 'Hold tickets';
    update(last);
    if (!res.ok) {
      clear(errors, problem(buyerMessage(res.error, names)));
      announce(buyerMessage(res.error, names));
      poll(true);
      return;
    }
    location.hash = '#/b/' + encodeURIComponent(res.data.bookId);
  }

  // Live availability: a poll every 2 s costs the server one cache hit, or a 304.
  let etag = null;
  let version = event.version;
  let timer = 0;
  let stopped = false;
  async function poll(once) {
    const a = await api('GET', '/v1/api/events/' + encodeURIComponent(key) + '/availability',
      { headers: etag ? { 'If-None-Match': etag } : {} });
    if (stopped) return;
    if (a.status === 304) update(last);  // the same stock; the windows may have moved
    if (a.ok && a.data) {
      etag = a.etag;
      if (a.data.version !== version) {  // prices, windows or tiers changed: read it all again
        const full = await api('GET', '/v1/api/events/' + encodeURIComponent(key));
        if (stopped) return;
        if (full.ok) {
          event = full.data;
          version = event.version;
          render();
        }
      }
      update(a.data);
    }
    main.dataset.polls = Number(main.dataset.polls || 0) + 1;  // how many polls have answered
    if (!once) timer = setTimeout(poll, 2000);
  }
  timer = setTimeout(poll, 2000);
  leave = () => { stopped = true; clearTimeout(timer); };
}

function back() {
  return el('p', {}, el('a', { href: '#/', class: 'back' }, '← All events'));
}

// --- one booking ------------------------------------------------------------------------------

async function bookingPage(id) {
  const r = await api('GET', '/v1/api/books/' + encodeURIComponent(id));
  if (!r.ok) return clear(main, el('h1', {}, 'Your booking'), problem(buyerMessage(r.error)), back());
  let booking = r.data;
  const ev = await api('GET', '/v1/api/events/' + encodeURIComponent(booking.key));
  const event = ev.ok ? ev.data : null;
  const names = event ? Object.fromEntries(event.eventGroups.map((g) => [g.key, g.category])) : {};
  document.title = 'Your booking · Tickets';
  const status = el('p', { id: 'booking-status', class: 'status', role: 'status' });
  const countdown = el('p', { id: 'countdown', class: 'countdown', 'aria-live': 'off' });
  const errors = el('div', { id: 'booking-error' });
  const actions = el('div', { class: 'actions' });
  let timer = 0;
  let stopped = false;
  leave = () => { stopped = true; clearInterval(timer); };

  clear(main,
    el('h1', {}, 'Your booking'),
    event ? el('p', {}, el('a', { href: '#/e/' + encodeURIComponent(event.key) }, event.name),
      el('span', { class: 'muted' }, ' · ' + localTime(event.date, event.utcOffset))) : null,
    el('table', { class: 'lines' },
      el('caption', { class: 'visually-hidden' }, 'Tickets in this booking'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Ticket'), el('th', { scope: 'col' }, 'Quantity'), el('th', { scope: 'col' }, 'Each'))),
      el('tbody', {}, booking.groupKeys.map((l) => el('tr', {},
        el('th', { scope: 'row' }, names[l.key] || l.key), el('td', {}, l.qty),
        el('td', {}, money(l.price, booking.currency))))),
      el('tfoot', {}, el('tr', {}, el('th', { scope: 'row', colspan: 2 }, 'Total'),
        el('td', { id: 'total' }, money(booking.price, booking.currency))))),
    status, countdown, errors, actions,
    el('p', { class: 'muted small' }, 'Booking reference ', el('code', {}, booking.bookId),
      '. Keep this page’s address: it is your key to the booking.'));

  const show = () => {
    const s = booking.status;
    status.dataset.status = s;
    status.textContent = {
      HELD: 'Your tickets are held for you. Pay before the time runs out.',
      CONFIRMED: 'Paid. Your tickets are confirmed.',
      CANCELLED: 'This booking was cancelled. The tickets went back on sale.',
      EXPIRED: 'This hold has expired. The tickets went back on sale.',
    }[s] || s;
    clearInterval(timer);
    clear(actions);
    if (s !== 'HELD') {
      countdown.textContent = s === 'EXPIRED' ? 'Expired' : '';
      countdown.classList.toggle('expired', s === 'EXPIRED');
      return;
    }
    if (settings.demoPayment) {
      actions.append(el('button', { type: 'button', id: 'pay', onclick: pay }, 'Pay now (demo)'));
    } else if (settings.checkoutUrl) {
      actions.append(el('a', { class: 'button', id: 'pay',
        href: settings.checkoutUrl.replaceAll('{bookId}', encodeURIComponent(booking.bookId)) }, 'Pay now'));
    }
    actions.append(el('button', { type: 'button', id: 'cancel', class: 'secondary', onclick: cancel }, 'Cancel booking'));
    const deadline = Date.parse(booking.expiresAt);
    const tick = () => {
      const left = Math.max(0, deadline - now());
      if (left === 0) {
        clearInterval(timer);
        countdown.textContent = 'Expired';
        countdown.classList.add('expired');
        status.textContent = 'This hold has expired. The tickets went back on sale.';
        status.dataset.status = 'EXPIRED';
        clear(actions);
        announce('Your hold has expired.');
        setTimeout(refresh, 1500);  // the server's word, once its sweeper has run
        return;
      }
      const s = Math.ceil(left / 1000);
      countdown.textContent = `Held for ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
      if (s === 60) announce('One minute left to pay.');
    };
    tick();
    timer = setInterval(tick, 250);
  };
  const refresh = async () => {
    const again = await api('GET', '/v1/api/books/' + encodeURIComponent(id));
    if (stopped || !again.ok) return;
    if (again.data.status === 'HELD' && Date.parse(again.data.expiresAt) <= now()) return;
    booking = again.data;
    show();
  };
  async function cancel() {
    const res = await api('POST', '/v1/api/books/' + encodeURIComponent(id) + '/cancel', { body: {} });
    if (!res.ok) return clear(errors, problem(buyerMessage(res.error, names)));
    clear(errors);
    booking = res.data;
    show();
    announce('Your booking was cancelled.');
  }
  async function pay() {
    const res = await api('POST', '/v1/api/books/' + encodeURIComponent(id) + '/confirm',
      { body: { paymentMethod: 'demo', reference: 'storefront-demo' } });
    if (!res.ok) return clear(errors, problem(buyerMessage(res.error, names)));
    clear(errors);
    booking = res.data;
    show();
    announce('Paid. Your tickets are confirmed.');
  }
  show();
}

async function start() {
  const sent = Date.now();
  const s = await api('GET', '/v1/api/storefront');
  if (s.ok) {
    settings = s.data;
    // The server read its clock about halfway through the round trip.
    const server = Date.parse(s.data.serverTime);
    if (!Number.isNaN(server)) skew = server - (sent + Date.now()) / 2;
  }
  window.addEventListener('hashchange', route);
  route();
}
start();
