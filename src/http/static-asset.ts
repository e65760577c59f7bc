// Files the service serves from memory (the /docs page's Swagger UI, the dashboard): bytes with
// their content type and an ETag, answered with 304 when the client already has them.
import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { notFound } from '../errors.js';

export interface StaticAsset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  gif: 'image/gif',
};

export function staticAsset(body: Uint8Array | string, extension: string): StaticAsset {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body);
  return {
    body: bytes,
    contentType: CONTENT_TYPES[extension] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`,
  };
}

/** The answer for a GET of `file` (404 when there is none), with `headers` on 200 and 304 alike. */
export function serveAsset(c: Context, file: StaticAsset | undefined, headers: Record<string, string>): Response {
  if (!file) throw notFound('No such file');
  const all = { ...headers, etag: file.etag, 'x-content-type-options': 'nosniff' };
  if (c.req.header('if-none-match')?.split(/\s*,\s*/).includes(file.etag)) return c.body(null, 304, all);
  return c.body(file.body, 200, { ...all, 'content-type': file.contentType });
}
