// The dashboard: GET / and its files under /assets, as the build left them in dist/web
// (index.html, and assets/ under content-hashed names: see scripts/build.mjs). The page uses
// the public API only; its Content-Security-Policy lets it load and call this service alone.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../../errors.js';
import { ErrorSchema, errorResponses, HEADERS } from '../schemas.js';
import { selfOnlyContentSecurityPolicy } from '../security-headers.js';
import { serveAsset, staticAsset, type StaticAsset } from '../static-asset.js';

interface DashboardFiles {
  page: StaticAsset;
  assets: ReadonlyMap<string, StaticAsset>;
}

/**
 * Where the built dashboard is, relative to this module: dist/web from dist/src/http/routes
 * (Node, Bun and Deno run the build), and from src/http/routes when the sources run (tests).
 * Only a directory with assets/ is a build: web/ itself holds the sources.
 */
const CANDIDATES = ['../../../web/', '../../../dist/web/'];

function loadDashboard(): DashboardFiles | null {
  for (const candidate of CANDIDATES) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (!existsSync(join(dir, 'index.html')) || !existsSync(join(dir, 'assets'))) continue;
    const assets = new Map(readdirSync(join(dir, 'assets')).map((name) => [name, staticAsset(readFileSync(join(dir, 'assets', name)), extname(name).slice(1))]));
    return { page: staticAsset(readFileSync(join(dir, 'index.html')), 'html'), assets };
  }
  return null;
}

const pageRoute = createRoute({
  method: 'get', path: '/', tags: ['dashboard'], summary: 'The dashboard (HTML)',
  description: 'Upload a CSV, watch requests progress live, see a request\'s outputs and failures, and the webhook deliveries. The page asks for the API key when the server wants one and keeps it in the browser tab only.',
  responses: {
    200: { content: { 'text/html': { schema: z.string() } }, headers: { ETag: HEADERS.etag }, description: 'The page' },
    304: { headers: { ETag: HEADERS.etag }, description: 'Not modified (If-None-Match matched)' },
    503: { content: { 'application/json': { schema: ErrorSchema } }, description: 'The dashboard was not built (npm run build)' },
    421: errorResponses[421],
  },
});

const assetRoute = createRoute({
  method: 'get', path: '/assets/{file}', tags: ['dashboard'], summary: 'A file of the dashboard (script, stylesheet, icon)',
  description: 'Names carry a hash of the content, so a file never changes and may be cached for a year.',
  request: { params: z.object({ file: z.string().openapi({ example: 'dashboard-IFXMBOOD.js' }) }) },
  responses: {
    200: { content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() }, 'image/svg+xml': { schema: z.string() } }, headers: { ETag: HEADERS.etag }, description: 'The file' },
    304: { headers: { ETag: HEADERS.etag }, description: 'Not modified (If-None-Match matched)' },
    404: { content: { 'application/json': { schema: ErrorSchema } }, description: 'No such file' },
    503: { content: { 'application/json': { schema: ErrorSchema } }, description: 'The dashboard was not built (npm run build)' },
    421: errorResponses[421],
  },
});

export function registerDashboardRoutes(app: OpenAPIHono): void {
  app.openAPIRegistry.registerPath(pageRoute);
  app.openAPIRegistry.registerPath(assetRoute);
  let files: DashboardFiles | null | undefined; // read on first use
  const built = () => {
    files ??= loadDashboard();
    if (!files) throw new AppError(503, 'The dashboard is not built: run npm run build');
    return files;
  };
  // The page: always revalidated, so a new release's asset names are picked up at once.
  const pageHeaders = { 'cache-control': 'no-cache', 'content-security-policy': selfOnlyContentSecurityPolicy() };
  app.get(pageRoute.path, (c) => serveAsset(c, built().page, pageHeaders));
  app.get('/assets/:file', (c) => serveAsset(c, built().assets.get(c.req.param('file')), { 'cache-control': 'public, max-age=31536000, immutable' }));
}
