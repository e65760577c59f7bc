import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { notFound } from '../../errors.js';
import type { BlobStorage } from '../../storage/types.js';
import { ErrorSchema, errorResponses, HEADERS } from '../schemas.js';
import { ROWS } from '../../codecs/table.js';

/** One response content type per row of the codec table. */
const imageContent = Object.fromEntries(ROWS.map((r) => [r.mime, { schema: z.any() }]));

const route = createRoute({
  method: 'get', path: '/images/{key}', tags: ['images'], summary: 'A stored output image',
  description: 'Keys are capabilities: an HMAC-SHA256 of the bytes under a per-deployment secret (outputs written before it keep their SHA-256 names), so a response never changes and is cached for a year.',
  request: { params: z.object({ key: z.string().openapi({ example: '3f2a…9c.jpg' }) }) },
  responses: {
    200: { content: imageContent, headers: { ETag: HEADERS.etag }, description: 'The image' },
    304: { headers: { ETag: HEADERS.etag }, description: 'Not modified (If-None-Match matched)' },
    404: { content: { 'application/json': { schema: ErrorSchema } }, description: 'No such image' },
    421: errorResponses[421],
  },
});

export function registerImageRoutes(app: OpenAPIHono, deps: { storage: BlobStorage }): void {
  app.openapi(route, async (c) => {
    const { key } = c.req.valid('param');
    const etag = `"${key.split('.')[0]}"`;
    const cache = { 'cache-control': 'public, max-age=31536000, immutable', etag };
    if (c.req.header('if-none-match')?.split(/\s*,\s*/).includes(etag)) return c.body(null, 304, cache);
    const blob = await deps.storage.get(key);
    if (!blob) throw notFound('Image not found');
    const headers = { ...cache, 'content-type': blob.contentType, 'content-length': String(blob.size), 'x-content-type-options': 'nosniff' };
    // Hono answers HEAD by dropping this handler's body unread: close it here, or every HEAD
    // leaks an open file (local) or a pooled connection (S3).
    if (c.req.method === 'HEAD') {
      await blob.body.cancel().catch(() => {});
      return c.body(null, 200, headers) as never;
    }
    return c.body(blob.body, 200, headers) as never;
  });
}
