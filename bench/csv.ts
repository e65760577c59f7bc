// CSV bodies for uploads, in the seed's format: S. No.,Product Name,Input Image Urls

/** One product per row; each product gets the URLs urlsFor(i) (comma-joined in one quoted cell). */
export function productCsv(rows: number, urlsFor: (i: number) => string[]): string {
  const parts = ['S. No.,Product Name,Input Image Urls\n'];
  for (let i = 1; i <= rows; i++) parts.push(`${i},Product ${i},"${urlsFor(i).join(',')}"\n`);
  return parts.join('');
}

export interface UploadAnswer {
  status: number;
  body: { request_id?: string; images?: number; products?: number; detail?: string };
}

/** POST /api/v1/upload with the CSV as the `file` part. */
export async function upload(base: string, csv: string, name = 'products.csv'): Promise<UploadAnswer> {
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), name);
  const res = await fetch(`${base}/api/v1/upload`, { method: 'POST', body: form });
  const body = (await res.json().catch(() => ({}))) as UploadAnswer['body'];
  return { status: res.status, body };
}

export interface StatusBody {
  status: string;
  progress: { total: number; done: number; failed: number };
}

export async function getStatus(base: string, id: string): Promise<StatusBody> {
  const res = await fetch(`${base}/api/v1/status/${id}?limit=1`);
  if (!res.ok) throw new Error(`status ${id}: HTTP ${res.status}`);
  return (await res.json()) as StatusBody;
}

/** Polls until the request is final; resolves with the status and the time it was first seen final. */
export async function waitFinal(base: string, id: string, everyMs = 50, timeoutMs = 600_000): Promise<{ status: StatusBody; at: number }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = await getStatus(base, id);
    if (s.status === 'completed' || s.status === 'failed') return { status: s, at: performance.now() };
    if (performance.now() > deadline) throw new Error(`request ${id} not final after ${timeoutMs} ms: ${JSON.stringify(s.progress)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
