// The dashboard (served at /): upload, the request list with live progress, a request's
// outputs and failures, and the webhook deliveries. Plain DOM; it talks to the service through
// the public API only (./api.ts). Routes live in the URL fragment (#/requests/<id>), so every
// path the page uses stays relative to it.
import {
  api, apiKey, ApiError, getJson, readEvents, WEBHOOK_EVENTS,
  type Delivery, type Product, type Progress, type RenditionOptions, type RequestStatus, type RequestSummary, type Status, type Webhook, type WebhookSecret,
} from './api.js';
import { OUTPUT_FORMATS, OUTPUT_OPTION_FIELDS, OUTPUT_OPTION_NAMES } from '../src/codecs/output-options.js';
import { breakableUrl, byId, bytesText, h, sleep, when } from './dom.js';

const FINAL = new Set<Status>(['completed', 'failed', 'cancelled']);
const LIST_LIMIT = 100;
const enc = encodeURIComponent;

const known = new Map<string, RequestSummary>();
let listStream: AbortController | null = null;
let detailStream: AbortController | null = null;

// ---- messages and errors -------------------------------------------------------------------

/** The view a banner belongs to: a request's page, or "home" (the list, the key prompt). */
const currentView = () => /^#\/requests\/./.test(location.hash) ? location.hash : 'home';

/**
 * A banner, kept while it applies: it belongs to the view it was shown on (an "Accepted…" does not
 * follow onto a request's page), and `about: 'key'` ones go as soon as a key is accepted.
 */
function notify(text: string, kind: 'info' | 'error' = 'info', about: 'view' | 'key' = 'view'): void {
  const box = byId('notice');
  box.textContent = text;
  box.className = kind;
  box.dataset.view = currentView();
  box.dataset.about = about;
}

function clearNotice(when: (box: HTMLElement) => boolean = () => true): void {
  const box = byId('notice');
  if (box.textContent && when(box)) {
    box.textContent = '';
    box.className = '';
  }
}

function stopStreams(): void {
  listStream?.abort();
  detailStream?.abort();
}

/** A failed call: a 401 asks for the key, an abort is nothing, anything else is shown. */
function failed(err: unknown): void {
  if (err instanceof DOMException && err.name === 'AbortError') return;
  if (err instanceof ApiError && err.status === 401) {
    stopStreams();
    askForKey(apiKey.get() !== null);
    return;
  }
  notify(err instanceof Error ? err.message : String(err), 'error');
}

// ---- the API key ---------------------------------------------------------------------------

function askForKey(refused: boolean): void {
  byId('key-section').hidden = false;
  byId('home').hidden = true;
  byId('detail').hidden = true;
  byId('forget-key').hidden = true;
  if (refused) notify('That API key was refused: enter another one.', 'error', 'key');
  byId('key-input').focus();
}

byId('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byId<HTMLInputElement>('key-input');
  apiKey.set(input.value.trim());
  input.value = '';
  void start();
});

byId('forget-key').addEventListener('click', () => {
  apiKey.clear();
  known.clear();
  byId('requests').replaceChildren();
  notify('The API key is forgotten.', 'info', 'key');
  void start();
});

// ---- the request list, fed by one event stream -----------------------------------------------

const rank = (s: RequestSummary) => [s.updated_at, s.progress.done + s.progress.failed, FINAL.has(s.status) ? 2 : s.status === 'processing' ? 1 : 0] as const;

/** Whether `a` is at least as new as `b` (an event and a list read may arrive in either order). */
function notOlder(a: RequestSummary, b: RequestSummary | undefined): boolean {
  if (!b) return true;
  const [x, y] = [rank(a), rank(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! > y[i]!;
  return true;
}

function progressBar(p: Progress, label: string): HTMLProgressElement {
  return h('progress', { max: p.total, value: p.done + p.failed, 'aria-label': label });
}

const countsText = (p: Progress) => `${p.done + p.failed} of ${p.total} image${p.total === 1 ? '' : 's'}${p.failed ? ` (${p.failed} failed)` : ''}`;

/** "saved 72%" once some image is done, else nothing. */
const savedText = (s: RequestSummary) => (s.bytes.in > 0 ? bytesText(s.bytes.in, s.bytes.out) : '');

/** What a request is called: its CSV file's name, or its id when it has none. */
const titleOf = (s: RequestSummary) => s.file_name ?? s.request_id;

function upsert(s: RequestSummary): void {
  const before = known.get(s.request_id);
  if (!notOlder(s, before)) return;
  known.set(s.request_id, s);
  const list = byId('requests');
  let row = list.querySelector<HTMLLIElement>(`li[data-id="${CSS.escape(s.request_id)}"]`);
  if (!row) {
    row = h('li', { 'data-id': s.request_id });
    const next = [...list.children].find((li) => (known.get((li as HTMLElement).dataset.id!)?.created_at ?? '') < s.created_at);
    list.insertBefore(row, next ?? null);
    while (list.children.length > LIST_LIMIT * 2) list.lastElementChild!.remove();
  }
  row.replaceChildren(
    h('span', { class: 'name' },
      h('a', { href: `#/requests/${enc(s.request_id)}`, class: 'file', title: s.request_id }, titleOf(s)),
      h('span', { class: 'id' }, s.request_id)),
    h('span', { class: `state state-${s.status}` }, s.status),
    progressBar(s.progress, `Progress of request ${titleOf(s)}`),
    h('span', { class: 'counts' }, countsText(s.progress)),
    h('span', { class: 'saved' }, savedText(s)),
    h('time', { datetime: s.created_at }, when(s.created_at)),
  );
  // A request that just finished has likely sent webhooks.
  if (FINAL.has(s.status) && before && !FINAL.has(before.status)) scheduleWebhooks();
  if (s.request_id === shownId) updateSummary(s);
}

async function loadList(signal?: AbortSignal): Promise<void> {
  const page = await getJson<{ requests: RequestSummary[] }>(`api/v1/requests?limit=${LIST_LIMIT}`, signal ? { signal } : {});
  page.requests.forEach(upsert);
  byId('requests-empty').hidden = known.size > 0;
}

/** Keeps the list live: open the stream, then read the list (so nothing is missed), then follow. */
async function followList(): Promise<void> {
  const ctrl = new AbortController();
  listStream = ctrl;
  const live = byId('live-state');
  for (let failures = 0; !ctrl.signal.aborted;) {
    try {
      const res = await api('api/v1/requests/events', { signal: ctrl.signal, headers: { accept: 'text/event-stream' } });
      live.textContent = 'Live updates on.';
      await loadList(ctrl.signal);
      failures = 0;
      await readEvents(res, (event, data) => {
        if (event !== 'request') return;
        upsert(data as RequestSummary);
        byId('requests-empty').hidden = true;
      });
    } catch (err) {
      if (ctrl.signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) return failed(err);
      failures++;
    }
    live.textContent = 'Live updates interrupted: reconnecting…';
    await sleep(Math.min(30_000, 1_000 * 2 ** failures), ctrl.signal);
  }
}

// ---- upload ----------------------------------------------------------------------------------

const OPTION_FIELDS = [...OUTPUT_OPTION_NAMES, 'webhook_url'];
// the format list and the number limits are the options table's (index.html holds neither)
byId<HTMLSelectElement>('format').append(...OUTPUT_FORMATS.map((f) => new Option(f, f)));
for (const [name, field] of Object.entries(OUTPUT_OPTION_FIELDS)) {
  if (field.kind !== 'integer') continue;
  const input = byId<HTMLInputElement>(name);
  if (input.type === 'number') Object.assign(input, { min: String(field.min), max: String(field.max) });
  for (const range of document.querySelectorAll(`[data-range-of="${name}"]`)) range.textContent = `${field.min} to ${field.max}`;
}

byId<HTMLFormElement>('upload-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  const file = byId<HTMLInputElement>('file').files?.[0];
  if (!file) return notify('Choose a CSV file first.', 'error');
  const body = new FormData();
  // Options first: the server checks them before it reads the file.
  for (const name of OPTION_FIELDS) {
    const input = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
    // a checkbox (progressive) sends 'true' when ticked and nothing (the default) otherwise
    const value = input instanceof HTMLInputElement && input.type === 'checkbox' ? (input.checked ? 'true' : '') : input.value.trim();
    if (value) body.append(name, value);
  }
  body.append('file', file, file.name);
  const button = form.querySelector('button')!;
  button.disabled = true;
  notify(`Uploading ${file.name}…`);
  try {
    const res = await getJson<{ request_id: string; products: number; images: number; webhook_secret?: string }>('api/v1/upload', { method: 'POST', body });
    form.reset();
    notify(`Accepted ${res.products} products, ${res.images} images: request ${res.request_id}.`
      + (res.webhook_secret ? ` The webhook's signing secret, shown only now: ${res.webhook_secret}` : ''));
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
});

// ---- a request's page -----------------------------------------------------------------------

let shownId: string | null = null;

function updateSummary(s: RequestSummary): void {
  const box = document.querySelector('#detail .summary');
  if (!box) return;
  box.querySelector('.state')!.replaceWith(h('span', { class: `state state-${s.status}` }, s.status));
  box.querySelector('progress')!.replaceWith(progressBar(s.progress, `Progress of request ${s.request_id}`));
  box.querySelector('.counts')!.textContent = countsText(s.progress);
  const bytes = box.parentElement?.querySelector('.bytes');
  if (bytes && s.bytes) bytes.textContent = `Bytes in and out: ${bytesText(s.bytes.in, s.bytes.out)}`;
}

function resultCell(p: Product, i: number): HTMLElement {
  const error = p.errors[i];
  if (error) return h('td', { class: 'error', 'data-label': 'Result' }, `Failed: ${error}`);
  const bytesIn = p.input_bytes[i];
  const bytesOut = p.output_bytes[i];
  if (p.output_urls[i] && bytesIn != null && bytesOut != null) {
    const note = p.notes?.[i];
    const quality = p.qualities?.[i];
    const score = p.scores?.[i];
    const made = (quality != null ? `, quality ${quality}` : '') + (score != null ? `, SSIMULACRA2 ${score.toFixed(1)}` : '');
    return h('td', { 'data-label': 'Result' }, `${p.outcomes[i] ?? 'done'}: ${bytesText(bytesIn, bytesOut)}${made}${note ? ` (${note})` : ''}`);
  }
  return h('td', { class: 'muted', 'data-label': 'Result' }, p.output_urls[i] ? 'done' : 'pending');
}

/** An output from this service, by path relative to the page (PUBLIC_BASE_URL may name another host). */
const imagePath = (url: string | null | undefined): string | null => (url ? `images/${url.slice(url.lastIndexOf('/images/') + '/images/'.length)}` : null);

/**
 * The rendition the thumbnails show: the smallest one asked for (by its bounding box; an
 * unbounded side counts as no limit), or none. The page never asks for a rendition of its own.
 */
function thumbnailRendition(renditions: readonly RenditionOptions[]): string | null {
  const side = (r: RenditionOptions) => Math.min(r.max_width ?? Infinity, r.max_height ?? Infinity);
  return renditions.reduce<RenditionOptions | null>((best, r) => (best === null || side(r) < side(best) ? r : best), null)?.name ?? null;
}

function productRows(products: Product[], renditions: readonly RenditionOptions[]): HTMLTableRowElement[] {
  const thumbName = thumbnailRendition(renditions);
  return products.flatMap((p) => p.input_urls.map((url, i) => {
    const output = imagePath(p.output_urls[i]);
    const thumb = thumbName ? imagePath(p.renditions?.[thumbName]?.[i]) : null;
    // The smallest rendition when there is one; else the output itself, at the thumbnail's box size
    // (given, so the table does not reflow as images load) and loaded only when scrolled to.
    const picture = thumb ?? output;
    return h('tr', {},
      h('td', { 'data-label': 'Product' }, `${p.serial_number}. ${p.product_name}`),
      h('td', { class: 'url', 'data-label': 'Input' }, h('a', { href: url, rel: 'noreferrer noopener', target: '_blank' }, breakableUrl(url))),
      h('td', { 'data-label': 'Output' }, output && picture
        ? h('a', { href: output, target: '_blank' }, h('img', { src: picture, alt: `Output of ${url}`, class: 'thumb', width: '96', height: '96', loading: 'lazy' }))
        : '—'),
      ...(renditions.length ? [h('td', { class: 'renditions', 'data-label': 'Renditions' }, ...renditionLinks(p, i, renditions, url))] : []),
      resultCell(p, i),
    );
  }));
}

/** A link to each rendition of image i, named after it (a dash while it has none). */
function renditionLinks(p: Product, i: number, renditions: readonly RenditionOptions[], url: string): HTMLElement[] {
  return renditions.map(({ name }) => {
    const path = imagePath(p.renditions?.[name]?.[i]);
    return path
      ? h('a', { href: path, target: '_blank', class: 'rendition', 'aria-label': `Rendition ${name} of ${url}` }, name)
      : h('span', { class: 'rendition muted' }, `${name}: —`);
  });
}

async function downloadCsv(id: string): Promise<void> {
  try {
    const blob = await (await api(`api/v1/status/${enc(id)}/output.csv`)).blob();
    const href = URL.createObjectURL(blob);
    const link = h('a', { href, download: `${id}-output.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(href), 60_000);
  } catch (err) {
    failed(err);
  }
}

async function renderDetail(id: string, signal: AbortSignal): Promise<RequestStatus> {
  const s = await getJson<RequestStatus>(`api/v1/status/${enc(id)}?limit=100`, { signal });
  const renditions = s.options?.renditions ?? [];
  const body = h('tbody', {}, ...productRows(s.products, renditions));
  const more = h('button', { type: 'button', hidden: s.next_cursor === null }, 'Load more products');
  let cursor = s.next_cursor;
  more.addEventListener('click', async () => {
    try {
      const page = await getJson<RequestStatus>(`api/v1/status/${enc(id)}?limit=100&cursor=${enc(cursor!)}`);
      body.append(...productRows(page.products, renditions));
      cursor = page.next_cursor;
      more.hidden = cursor === null;
    } catch (err) {
      failed(err);
    }
  });
  const download = h('button', { type: 'button' }, 'Download output.csv');
  download.addEventListener('click', () => void downloadCsv(id));
  const actions = h('p', { class: 'actions' }, download, ...requestActions(id, s));
  byId('detail-title').textContent = `Request ${titleOf(s)}`;
  byId('detail-body').replaceChildren(
    ...(s.file_name !== null ? [h('p', { class: 'id' }, `Request ${s.request_id}`)] : []),
    h('div', { class: 'summary' },
      h('span', { class: `state state-${s.status}` }, s.status),
      progressBar(s.progress, `Progress of request ${id}`),
      h('span', { class: 'counts' }, countsText(s.progress)),
    ),
    h('p', {}, `Created ${when(s.created_at)}, updated ${when(s.updated_at)}.`),
    h('p', { class: 'bytes' }, `Bytes in and out: ${bytesText(s.bytes.in, s.bytes.out)}`),
    actions,
    h('div', { class: 'table' }, h('table', {},
      h('caption', {}, 'Images'),
      h('thead', {}, h('tr', {}, ...['Product', 'Input', 'Output', ...(renditions.length ? ['Renditions'] : []), 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
      body,
    )),
    more,
  );
  return s;
}

/** Cancel (while it runs), retry its failed images (once final), delete: the public API's request actions. */
function requestActions(id: string, s: RequestStatus): HTMLButtonElement[] {
  const action = (label: string, method: 'POST' | 'DELETE', path: string, after: () => void, confirmText?: string) => {
    const button = h('button', { type: 'button' }, label);
    button.addEventListener('click', async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      button.disabled = true;
      try {
        await api(path, { method });
        after();
      } catch (err) {
        failed(err);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  };
  const buttons: HTMLButtonElement[] = [];
  if (!FINAL.has(s.status)) {
    buttons.push(action('Cancel request', 'POST', `api/v1/requests/${enc(id)}/cancel`, () => notify(`Request ${id} cancelled.`)));
  } else if (s.progress.failed > 0) {
    buttons.push(action(`Retry ${s.progress.failed} failed image${s.progress.failed === 1 ? '' : 's'}`, 'POST', `api/v1/requests/${enc(id)}/retry`, () => {
      notify(`Retrying the failed images of ${id}.`);
      void showDetail(id);
    }));
  }
  buttons.push(action('Delete request', 'DELETE', `api/v1/requests/${enc(id)}`, () => {
    known.delete(id);
    byId('requests').querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove();
    byId('requests-empty').hidden = known.size > 0;
    location.hash = '';
    notify(`Request ${id} deleted.`); // after leaving its page: the banner belongs to the list
  }, `Delete request ${id} and its outputs? This cannot be undone.`));
  return buttons;
}

/** Shows a request and keeps it current from its event stream until it is final. */
async function showDetail(id: string): Promise<void> {
  detailStream?.abort();
  const ctrl = new AbortController();
  detailStream = ctrl;
  shownId = id;
  byId('detail-title').textContent = `Request ${id}`;
  byId('detail-body').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  byId('detail-title').focus();
  for (let failures = 0; !ctrl.signal.aborted;) {
    try {
      // The stream first, then the page: a change after the read still arrives.
      const res = await api(`api/v1/status/${enc(id)}/events`, { signal: ctrl.signal, headers: { accept: 'text/event-stream' } });
      const shown = await renderDetail(id, ctrl.signal);
      let final = FINAL.has(shown.status);
      await readEvents(res, (event, data) => {
        updateSummary({ ...shown, ...(data as Partial<RequestSummary>) });
        if (event !== 'progress') final = true;
      });
      if (final) {
        if (!FINAL.has(shown.status)) await renderDetail(id, ctrl.signal);
        return;
      }
    } catch (err) {
      if (ctrl.signal.aborted) return;
      if (err instanceof ApiError) return failed(err);
      failures++;
    }
    await sleep(Math.min(30_000, 1_000 * 2 ** failures), ctrl.signal);
  }
}

// ---- webhooks --------------------------------------------------------------------------------

function deliveryItem(w: Webhook, d: Delivery): HTMLLIElement {
  const retry = h('button', { type: 'button' }, 'Retry', h('span', { class: 'vh' }, ` delivery ${d.id}`));
  retry.addEventListener('click', async () => {
    try {
      await api(`api/v1/webhooks/${enc(w.id)}/deliveries/${enc(d.id)}/retry`, { method: 'POST' });
      notify(`Delivery ${d.id} is queued again.`);
      await loadWebhooks();
    } catch (err) {
      failed(err);
    }
  });
  return h('li', { 'data-id': d.id },
    h('span', { class: `state state-${d.state}` }, d.state), ' ',
    h('span', {}, `${d.event_type} for `), h('a', { href: `#/requests/${enc(d.request_id)}` }, d.request_id),
    h('span', { class: 'attempt-count' }, `, ${d.attempts} ${d.attempts === 1 ? 'attempt' : 'attempts'}`),
    d.last_error ? h('span', { class: 'error' }, ` (${d.last_error})`) : null,
    ' ', retry,
    h('ol', { class: 'attempts' }, ...d.attempt_log.map((a) => h('li', {},
      `${when(a.at)}: ${a.status_code !== null ? `HTTP ${a.status_code}` : a.error ?? 'no answer'}, ${a.duration_ms} ms`))),
  );
}

/** Shows a signing secret once, with what to do with it; it cannot be read back later. */
function showSecret(label: string, answer: WebhookSecret): void {
  byId('webhook-secret').replaceChildren(
    h('p', {}, `${label} Copy it now: it is shown only this once.`),
    h('code', { class: 'secret', 'data-id': answer.id }, answer.secret),
  );
  byId('webhook-secret').hidden = false;
}

function subscriptionActions(w: Webhook): HTMLElement {
  const rotate = h('button', { type: 'button' }, 'Rotate secret', h('span', { class: 'vh' }, ` of ${w.webhook_url}`));
  rotate.addEventListener('click', async () => {
    try {
      const answer = await getJson<WebhookSecret>(`api/v1/webhooks/${enc(w.id)}/rotate-secret`, { method: 'POST' });
      showSecret(`The new signing secret of ${w.webhook_url}; the old one still signs for 24 hours.`, answer);
    } catch (err) {
      failed(err);
    }
  });
  const remove = h('button', { type: 'button' }, 'Delete subscription', h('span', { class: 'vh' }, ` to ${w.webhook_url}`));
  remove.addEventListener('click', async () => {
    if (!window.confirm(`Stop sending events to ${w.webhook_url}?`)) return;
    try {
      await api(`api/v1/webhooks/${enc(w.id)}`, { method: 'DELETE' });
      notify(`The subscription to ${w.webhook_url} is deleted.`);
      byId('webhook-secret').hidden = true;
      await loadWebhooks();
    } catch (err) {
      failed(err);
    }
  });
  return h('p', { class: 'actions' }, rotate, remove);
}

async function webhookArticle(w: Webhook): Promise<HTMLElement> {
  const { deliveries } = await getJson<{ deliveries: Delivery[] }>(`api/v1/webhooks/${enc(w.id)}/deliveries?limit=10`);
  return h('article', { class: 'webhook', 'data-id': w.id },
    h('h3', {}, breakableUrl(w.webhook_url)),
    h('p', { class: 'muted' }, `${w.events.join(', ')}; since ${when(w.created_at)}`),
    subscriptionActions(w),
    deliveries.length ? h('ul', { class: 'deliveries' }, ...deliveries.map((d) => deliveryItem(w, d))) : h('p', { class: 'muted' }, 'No deliveries yet.'),
  );
}

async function loadWebhooks(): Promise<void> {
  try {
    const { webhooks } = await getJson<{ webhooks: Webhook[] }>('api/v1/webhooks');
    byId('webhooks').replaceChildren(...(webhooks.length
      ? await Promise.all(webhooks.map(webhookArticle))
      : [h('p', { class: 'muted' }, 'No subscriptions yet.')]));
  } catch (err) {
    failed(err);
  }
}

let webhooksTimer = 0;
function scheduleWebhooks(): void {
  window.clearTimeout(webhooksTimer);
  webhooksTimer = window.setTimeout(() => void loadWebhooks(), 1_000);
}

byId('webhooks-refresh').addEventListener('click', () => void loadWebhooks());

byId('webhook-events').append(...WEBHOOK_EVENTS.map((event) => h('label', { class: 'check' },
  h('input', { type: 'checkbox', name: 'events', value: event, checked: true }), ` ${event}`)));

byId<HTMLFormElement>('webhook-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  const url = byId<HTMLInputElement>('webhook-new-url').value.trim();
  const events = [...form.querySelectorAll<HTMLInputElement>('input[name="events"]:checked')].map((box) => box.value);
  if (events.length === 0) return notify('Choose at least one event.', 'error');
  const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
  button.disabled = true;
  try {
    const answer = await getJson<WebhookSecret>('api/v1/webhook/configure', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhook_url: url, events }),
    });
    form.reset();
    clearNotice();
    showSecret(`Subscribed ${url}. Its signing secret:`, answer);
    await loadWebhooks();
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
});

// ---- start -----------------------------------------------------------------------------------

function route(): void {
  clearNotice((box) => box.dataset.about === 'view' && box.dataset.view !== currentView());
  const m = /^#\/requests\/(.+)$/.exec(location.hash);
  byId('home').hidden = m !== null;
  byId('detail').hidden = m === null;
  if (m) void showDetail(decodeURIComponent(m[1]!));
  else {
    detailStream?.abort();
    shownId = null;
  }
}

async function start(): Promise<void> {
  stopStreams();
  try {
    await loadList(); // a 401 here means the server wants a key
  } catch (err) {
    return failed(err);
  }
  byId('key-section').hidden = true;
  byId('forget-key').hidden = apiKey.get() === null;
  clearNotice((box) => box.dataset.about === 'key'); // a key works now: what was said about keys is past
  route();
  void followList();
  void loadWebhooks();
}

window.addEventListener('hashchange', route);
void start();
