// What the storefront and the operator's page share: calling the API, building DOM nodes (text
// is always set as text, never parsed as HTML), money and dates, and the API's errors in words.

// Calls the API. Resolves to {ok, status, data, error, etag, next}; a network failure is an
// error with code "network". `token`: sent as Authorization, never in a URL.
export async function api(method, path, { body, token, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  const init = { method, headers: h, cache: 'no-cache' };
  if (body !== undefined) {
    h['Content-Type'] = headers['Content-Type'] || 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, error: { code: 'network', message: String(e) } };
  }
  const out = { ok: res.ok, status: res.status, etag: res.headers.get('ETag') };
  if (res.status === 304) return out;
  let json = null;
  try {
    json = await res.json();
  } catch (e) {
    json = null;
  }
  if (res.ok) {
    out.data = json ? json.data : null;
    out.next = json ? json.next : undefined;
  } else {
    out.error = (json && json.error) || { code: 'http_' + res.status, message: res.statusText };
    out.retryAfter = res.headers.get('Retry-After');
  }
  return out;
}

// el('p', {class: 'x', onclick: f}, 'text', child): an element. Strings become text nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

export function money(amount, currency) {
  const n = Number(amount);
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(n);
  } catch (e) {
    return `${n} ${currency}`;
  }
}

// "+07:00" -> 420
export function offsetMinutes(text) {
  const m = /^([+-])(\d\d):?(\d\d)$/.exec(text || '');
  if (!m) return 0;
  const v = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -v : v;
}

// An instant as people at the event read it: "Wed 24 Feb 2027, 20:00 (UTC+07:00)".
export function localTime(iso, utcOffset) {
  if (!iso) return '';
  const minutes = offsetMinutes(utcOffset);
  const shifted = new Date(Date.parse(iso) + minutes * 60000);
  const text = new Intl.DateTimeFormat(undefined, {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
  }).format(shifted);
  return `${text} (UTC${utcOffset || '+00:00'})`;
}

// An instant in the event's time as a datetime-local value ("2027-02-24T20:00"), and back.
export function toLocalInput(iso, utcOffset) {
  if (!iso) return '';
  const shifted = new Date(Date.parse(iso) + offsetMinutes(utcOffset) * 60000);
  return shifted.toISOString().slice(0, 16);
}
export function fromLocalInput(value, utcOffset) {
  if (!value) return '';
  return `${value.length === 16 ? value + ':00' : value}${utcOffset || '+00:00'}`;
}

// The API's error in words a buyer understands.
// `names`: tier key -> the name a buyer sees.
export function buyerMessage(error, names = {}) {
  const d = error.details || {};
  switch (error.code) {
    case 'insufficient_stock': {
      const left = Object.entries(d.available || {})
        .filter(([, v]) => typeof v === 'number')
        .map(([k, v]) => (v === 0 ? `${names[k] || k} is sold out` : `only ${v} left of ${names[k] || k}`));
      return `Not enough tickets left${left.length ? ': ' + left.join(', ') : ''}.`;
    }
    case 'sale_not_open':
      return 'These tickets are not on sale right now: the sale has not opened yet or has ended.';
    case 'sale_closed':
      return 'Sales for this event are closed.';
    case 'wave_limit_reached':
      return 'This release is sold out. More tickets may be released later.';
    case 'per_user_limit': {
      const kind = d.key && names[d.key] ? names[d.key] + ' tickets' : 'tickets of this kind';
      if (d.maxPerOrder) return `You can buy at most ${d.maxPerOrder} ${kind} in one order.`;
      if (d.maxPerUser) {
        return `Limit reached: at most ${d.maxPerUser} ${kind} per buyer` +
          (d.alreadyBooked ? `, and you already have ${d.alreadyBooked}.` : '.');
      }
      return 'You have reached the limit of tickets per buyer.';
    }
    case 'rate_limited':
      return 'Too many requests at once. Please wait a moment and try again.';
    case 'lock_timeout':
    case 'unavailable':
      return 'Tickets are in high demand right now. Please try again.';
    case 'hold_expired':
      return 'Your hold has expired and the tickets went back on sale.';
    case 'invalid_state':
      return 'This booking can no longer be changed.';
    case 'not_found':
      return 'We could not find that. It may have been removed.';
    case 'validation_failed':
      return 'Please check your choice: ' +
        (Object.entries(d).map(([k, v]) => `${k} ${v}`).join('; ') || error.message) + '.';
    case 'network':
      return 'We cannot reach the box office. Check your connection and try again.';
    case 'forbidden':
    case 'unauthorized':
      return 'You are not allowed to do that here.';
    default:
      return 'Something went wrong on our side. Please try again.';
  }
}
