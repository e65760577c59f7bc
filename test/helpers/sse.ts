// A server-sent events client for tests: reads a text/event-stream with fetch(), keeps every
// event and comment with the time it arrived, and says when the server ended the stream.
//
//   const s = await openEvents(`${base}/api/v1/requests/events`, { 'x-api-key': key });
//   const e = await s.next((e) => e.event === 'request');
//   await s.ended;  // the server closed it
//   s.close();      // we close it
export interface SseEvent {
  id: string | null;
  event: string;
  data: any;
  /** performance.now() when it arrived */
  at: number;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** the body of a refusal (not an event stream) */
  body: any;
  events: SseEvent[];
  comments: string[];
  /** resolves when the server ends the stream; rejects if it broke off */
  ended: Promise<void>;
  /** the first event (from the start) matching `match`, waiting for it if needed */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** resolves when a comment matching `text` has arrived */
  comment(text: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openEvents(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  let done = false;
  let failure: unknown = null;

  const isStream = res.ok && (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
  const body = isStream ? null : await res.json().catch(() => null);
  const ended = !isStream ? Promise.resolve() : (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else {
              const at = line.indexOf(':');
              fields[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
            }
          }
          if (fields.data !== undefined) {
            events.push({ id: fields.id ?? null, event: fields.event ?? 'message', data: JSON.parse(fields.data), at: performance.now() });
          }
          notify();
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) failure = err;
    } finally {
      done = true;
      notify();
    }
    if (failure) throw failure;
  })();
  ended.catch(() => {});

  const waitFor = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events.map((e) => [e.event, e.data]))}`)), timeoutMs);
    const finish = (err?: Error, value?: T) => {
      clearTimeout(timer);
      waiters.delete(poll);
      if (err) reject(err);
      else resolve(value as T);
    };
    const poll = () => {
      const found = check();
      if (found !== undefined) finish(undefined, found);
      else if (done) finish(new Error(`the stream ended before ${what}; events: ${JSON.stringify(events.map((e) => [e.event, e.data]))}`));
    };
    waiters.add(poll);
    poll();
  });

  return {
    status: res.status, headers: res.headers, body, events, comments, ended,
    next: (match = () => true, timeoutMs = 30_000) => waitFor(() => events.find(match), 'an event', timeoutMs),
    comment: (text, timeoutMs = 30_000) => waitFor(() => (comments.includes(text) ? true : undefined), `comment "${text}"`, timeoutMs).then(() => {}),
    close: () => abort.abort(),
  };
}
