// The page's only way to the service: the public /api/v1 routes, with the API key (when the
// server wants one) in the X-API-Key header. The key lives in this tab's sessionStorage and
// nowhere else: never in a URL, a cookie or localStorage. Paths are relative to the page.

const KEY = 'image-csv-processor.api-key';

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string): void => sessionStorage.setItem(KEY, key),
  clear: (): void => sessionStorage.removeItem(KEY),
};

/** A refusal from the API: its status and its { detail }. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly detail: string) {
    super(detail);
  }
}

/** Calls the API; throws ApiError for anything but 2xx. */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = apiKey.get();
  if (key) headers.set('X-API-Key', key);
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { detail?: string } | null;
    throw new ApiError(res.status, body?.detail ?? `HTTP ${res.status}`);
  }
  return res;
}

export const getJson = async <T>(path: string, init?: RequestInit): Promise<T> => (await api(path, init)).json() as Promise<T>;

/**
 * Reads a text/event-stream answer (EventSource cannot send the key header, so the stream is
 * read with fetch()); calls onEvent for each event, resolves when the server ends the stream.
 */
export async function readEvents(res: Response, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      let event = 'message';
      const data: string[] = [];
      for (const line of buffer.slice(0, cut).split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      buffer = buffer.slice(cut + 2);
      if (data.length) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}

// ---- the shapes the page reads (see /openapi.json) -----------------------------------------

export type Status = 'received' | 'processing' | 'completed' | 'failed' | 'cancelled';
export interface Progress { total: number; done: number; failed: number }

export interface RequestSummary {
  request_id: string;
  status: Status;
  /** The uploaded CSV's name; null for requests made before names were kept. */
  file_name: string | null;
  progress: Progress;
  bytes: { in: number; out: number };
  created_at: string;
  updated_at: string;
}

export interface Product {
  serial_number: number;
  product_name: string;
  input_urls: string[];
  output_urls: (string | null)[];
  errors: (string | null)[];
  outcomes: (string | null)[];
  notes?: (string | null)[];
  input_bytes: (number | null)[];
  output_bytes: (number | null)[];
  /** by rendition name, aligned with input_urls (only when the request asked for renditions) */
  renditions?: Record<string, (string | null)[]>;
}

export interface RenditionOptions { name: string; max_width: number | null; max_height: number | null; format: string }

export interface RequestStatus extends RequestSummary {
  options?: { renditions?: RenditionOptions[] };
  products: Product[];
  next_cursor: string | null;
}

export interface Webhook { id: string; webhook_url: string; events: string[]; created_at: string }

/** What configure and rotate answer: the signing secret, shown once. */
export interface WebhookSecret { id: string; secret: string }

export const WEBHOOK_EVENTS = ['processing.started', 'processing.completed', 'processing.failed', 'processing.cancelled'] as const;

export interface Delivery {
  id: string;
  event_type: string;
  request_id: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_error: string | null;
  created_at: string;
  attempt_log: { attempt: number; at: string; status_code: number | null; error: string | null; duration_ms: number }[];
}
