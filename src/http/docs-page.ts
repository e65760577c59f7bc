// The interactive API reference at /docs: Swagger UI from the installed swagger-ui-dist package,
// served by this service (no CDN, works offline) under a Content-Security-Policy that lets the
// page load scripts, styles, images and connections from this service only.
//
// Two things keep that policy strict without 'unsafe-inline':
// - the start-up script is a file (/docs/assets/docs.js), not an inline <script>;
// - swagger-ui.css carries its icons as data: URIs, which img-src 'self' blocks; they are moved
//   into files of their own (img-<hash>.svg, …) and the stylesheet points at those instead.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { staticAsset as asset, type StaticAsset } from './static-asset.js';

/** What /docs/assets/{file} serves, by file name. */
export type DocsAssets = ReadonlyMap<string, StaticAsset>;

const INIT_SCRIPT = `// Starts Swagger UI on the document the page names (data-openapi-url).
const root = document.getElementById('swagger-ui');

// "Try it out" starts a form's text and number fields empty (an empty field is not sent): Swagger
// UI would pre-fill a made-up sample (a number's minimum, https://example.com/ for a URL) and
// send it as if the user had chosen it.
const EmptyFormFields = (system) => {
  const sample = system.fn.getSampleSchema;
  const get = (schema, key) => (schema && typeof schema.get === 'function' ? schema.get(key) : schema && schema[key]);
  return {
    fn: {
      getSampleSchema: (schema, contentType, config, override) => {
        const type = get(schema, 'type');
        const formField = contentType === false && config && config.includeWriteOnly;
        if (formField && get(schema, 'format') !== 'binary' && (type === 'string' || type === 'integer' || type === 'number')) return '';
        return sample(schema, contentType, config, override);
      },
    },
  };
};

window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  validatorUrl: null, // the default sends the document to an outside validator
  plugins: [EmptyFormFields],
});
`;

const IMAGE_EXTENSIONS: Record<string, string> = { 'image/svg+xml': 'svg', 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif' };

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The page: markup only; everything it runs or shows comes from /docs/assets. */
export function docsPageHtml(opts: { title: string; openapiUrl: string; assetsPath: string }): string {
  const { title, openapiUrl, assetsPath } = { ...opts, title: escapeHtml(opts.title), openapiUrl: escapeHtml(opts.openapiUrl) };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" type="image/png" href="${assetsPath}/favicon-32x32.png">
<link rel="stylesheet" href="${assetsPath}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="${openapiUrl}"></div>
<script src="${assetsPath}/swagger-ui-bundle.js"></script>
<script src="${assetsPath}/docs.js"></script>
</body>
</html>
`;
}

/** RFC 2397 payload: base64, or percent-encoded bytes (a stray % is kept as it is). */
function dataUrlBytes(payload: string, base64: boolean): Uint8Array {
  if (base64) return Uint8Array.from(atob(payload), (ch) => ch.charCodeAt(0));
  const bytes = new TextEncoder().encode(payload);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const hex = i + 2 < bytes.length ? String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!) : '';
    if (bytes[i] === 0x25 && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(bytes[i]!);
    }
  }
  return Uint8Array.from(out);
}

/**
 * Moves the data: images of a stylesheet into files: returns the stylesheet pointing at them
 * (relative URLs, so they resolve beside it) and the files. A data: URI of another kind is left
 * as it is (img-src then blocks it: a missing icon, nothing worse).
 */
export function extractCssImages(css: string): { css: string; images: Map<string, StaticAsset> } {
  const images = new Map<string, StaticAsset>();
  // url("data:…") with CSS escapes inside the quotes, or url(data:…) unquoted.
  const DATA_URL = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(data:[^)"'\s]*))\s*\)/g;
  const rewritten = css.replace(DATA_URL, (whole, dq?: string, sq?: string, bare?: string) => {
    const raw = (dq ?? sq ?? bare ?? '').replace(/\\(.)/g, '$1');
    const m = /^data:([a-z]+\/[a-z0-9.+-]+)((?:;[^;,]*)*),(.*)$/is.exec(raw);
    const extension = m ? IMAGE_EXTENSIONS[m[1]!.toLowerCase()] : undefined;
    if (!m || !extension) return whole;
    const bytes = dataUrlBytes(m[3]!, /;base64$/i.test(m[2]!));
    const name = `img-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${extension}`;
    images.set(name, asset(bytes, extension));
    return `url(${name})`;
  });
  return { css: rewritten, images };
}

/** Reads Swagger UI from the installed swagger-ui-dist package (once; the caller keeps the result). */
export function loadDocsAssets(): DocsAssets {
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const read = (name: string) => readFileSync(join(dist, name));
  const { css, images } = extractCssImages(read('swagger-ui.css').toString('utf8'));
  return new Map([
    ['swagger-ui-bundle.js', asset(read('swagger-ui-bundle.js'), 'js')],
    ['swagger-ui.css', asset(css, 'css')],
    ['favicon-32x32.png', asset(read('favicon-32x32.png'), 'png')],
    ['docs.js', asset(INIT_SCRIPT, 'js')],
    ...images,
  ]);
}
