// Transpiles src/, workers/ and bench/ to dist/ file by file (no bundling), so pool threads
// and child processes can load plain JavaScript on Node 20, and copies the .wasm files of wasm/. Type checking is `npm run typecheck`.
// Then bundles the dashboard (web/) into dist/web: index.html plus assets/ under content-hashed
// names, so the service can let browsers cache every asset for good.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

function tsFiles(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src', 'workers', 'bench'].flatMap((d) => { try { return tsFiles(d); } catch { return []; } }),
  outdir: 'dist',
  outbase: '.',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});

// The WebAssembly built by scripts in wasm/ (wasm/libjpeg/build.sh), at the same place relative to
// the JavaScript that loads it as in the source tree.
for (const entry of readdirSync('wasm', { withFileTypes: true }).filter((e) => e.isDirectory())) {
  const dir = entry.name;
  for (const name of readdirSync(join('wasm', dir)).filter((n) => n.endsWith('.wasm'))) {
    mkdirSync(join('dist', 'wasm', dir), { recursive: true });
    copyFileSync(join('wasm', dir, name), join('dist', 'wasm', dir, name));
  }
}

// ---- the dashboard ----------------------------------------------------------------------------
const assets = join('dist', 'web', 'assets');
const web = await build({
  entryPoints: ['web/dashboard.ts', 'web/dashboard.css'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari16'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
/** source path in web/ → the hashed file name in dist/web/assets */
const hashed = new Map(Object.entries(web.metafile.outputs)
  .filter(([, out]) => out.entryPoint)
  .map(([file, out]) => [basename(out.entryPoint), basename(file)]));
mkdirSync(assets, { recursive: true });
for (const name of ['icon.svg']) {
  const hash = createHash('sha256').update(readFileSync(join('web', name))).digest('hex').slice(0, 8).toUpperCase();
  const out = `${basename(name, extname(name))}-${hash}${extname(name)}`;
  copyFileSync(join('web', name), join(assets, out));
  hashed.set(name, out);
}
const html = readFileSync('web/index.html', 'utf8').replace(/"assets\/([^"]+)"/g, (whole, name) => {
  if (!hashed.has(name)) throw new Error(`web/index.html: no built asset for ${name}`);
  return `"assets/${hashed.get(name)}"`;
});
writeFileSync(join('dist', 'web', 'index.html'), html);
