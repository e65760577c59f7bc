// The batch CLI, as users run it: `node dist/src/cli/main.js process ...` in a child process
// (npm test builds dist first) against a local image server on 127.0.0.9 (allowlisted).
// Checks the output CSV, that the files it names exist and decode at the input's size, the
// summary and progress output, and the exit codes (0, 1 with a failing image, 2 for bad input).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import jpegDecode, { init as initJpegDecode } from '@jsquash/jpeg/decode.js';
import pngDecode, { init as initPngDecode } from '@jsquash/png/decode.js';
import webpDecode, { init as initWebpDecode } from '@jsquash/webp/decode.js';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFormat, readDimensions } from '../src/codecs/sniff.js';
import { jpegFrame } from '../src/codecs/jpeg-scale.js';
import { independentDecode } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const HOST = '127.0.0.9';
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const FIXTURES = { jpg: fixture('rocket-small.jpg'), png: fixture('chelsea.png'), webp: fixture('Kite.webp') };

const require = createRequire(import.meta.url);
const wasm = (spec: string) => new WebAssembly.Module(readFileSync(require.resolve(spec)));
if (typeof (globalThis as { ImageData?: unknown }).ImageData === 'undefined') {
  (globalThis as Record<string, unknown>).ImageData = class {
    constructor(readonly data: Uint8ClampedArray, readonly width: number, readonly height: number) {}
  };
}

async function decode(bytes: Uint8Array): Promise<{ width: number; height: number }> {
  const format = detectFormat(bytes);
  const buf = bytes.slice().buffer;
  if (format === 'jpeg') return jpegDecode(buf);
  if (format === 'png') return pngDecode(buf);
  if (format === 'webp') return webpDecode(buf);
  throw new Error('not an image');
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: {
        ...process.env, FETCH_ALLOWLIST: `${HOST}/32`, WORKER_THREADS: '1', FETCH_RETRIES: '0',
        FETCH_CONNECT_TIMEOUT_MS: '2000', FETCH_TIMEOUT_MS: '5000', LOG_LEVEL: 'warn', ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

let images: ImageServer;
let dir: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm test does)`);
  type Init = (module: WebAssembly.Module, overrides: object) => Promise<void>;
  const quiet = { print() {}, printErr() {} };
  await (initJpegDecode as unknown as Init)(wasm('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'), quiet);
  await (initWebpDecode as unknown as Init)(wasm('@jsquash/webp/codec/dec/webp_dec.wasm'), quiet);
  await initPngDecode(wasm('@jsquash/png/codec/pkg/squoosh_png_bg.wasm'));

  images = await startImageServer({ host: HOST });
  images.serve('/rocket.jpg', FIXTURES.jpg, 'image/jpeg');
  images.serve('/chelsea.png', FIXTURES.png, 'image/png');
  images.serve('/kite.webp', FIXTURES.webp, 'image/webp');
  dir = mkdtempSync(join(tmpdir(), 'icp-cli-'));
});

afterAll(async () => {
  await images?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function readCsv(path: string): string[][] {
  return parse(readFileSync(path, 'utf8'), { bom: true }) as string[][];
}

describe('image-csv-processor process', () => {
  it('processes every image, writes the output CSV pointing at the files, exits 0', async () => {
    const input = join(dir, 'ok.csv');
    writeFileSync(input, [
      'S. No.,Product Name,Input Image Urls',
      `1,Rocket,"${images.url('/rocket.jpg')},${images.url('/chelsea.png')}"`,
      `2,Kite,${images.url('/kite.webp')}`,
      '',
    ].join('\n'));
    const run = await runCli(['process', 'ok.csv', '--out', 'out/ok-output.csv', '--concurrency', '2'], dir);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);

    const rows = readCsv(join(dir, 'out/ok-output.csv'));
    expect(rows[0]).toEqual(['S. No.', 'Product Name', 'Input Image Urls', 'Output Image Urls']);
    expect(rows.slice(1).map((r) => r.slice(0, 3))).toEqual([
      ['1', 'Rocket', `${images.url('/rocket.jpg')},${images.url('/chelsea.png')}`],
      ['2', 'Kite', images.url('/kite.webp')],
    ]);
    // outputs are paths relative to the output CSV, in the default images folder next to it
    const outputs = rows.slice(1).map((r) => r[3]!.split(','));
    expect(outputs.map((o) => o.length)).toEqual([2, 1]);
    const sources = [FIXTURES.jpg, FIXTURES.png, FIXTURES.webp];
    for (const [i, ref] of outputs.flat().entries()) {
      expect(isAbsolute(ref)).toBe(false);
      expect(ref.startsWith('ok-output-images/')).toBe(true);
      const file = resolve(dir, 'out', ref);
      expect(existsSync(file), file).toBe(true);
      const bytes = new Uint8Array(readFileSync(file));
      const src = sources[i]!;
      expect(detectFormat(bytes)).toBe(detectFormat(src));
      expect(bytes.byteLength).toBeLessThanOrEqual(src.byteLength);
      const decoded = await decode(bytes);
      const dims = readDimensions(src, detectFormat(src)!)!;
      expect({ width: decoded.width, height: decoded.height }).toEqual({ width: dims.width, height: dims.height });
    }

    expect(run.stdout).toMatch(/Done: 3 images of 2 products/);
    expect(run.stdout).toMatch(/succeeded: 3\s+failed: 0/);
    expect(run.stdout).toContain(resolve(dir, 'out/ok-output.csv'));
    // not a terminal: plain progress lines, the last one complete
    expect(run.stderr).toMatch(/progress: 3\/3 images/);
    expect(run.stderr).not.toContain('\r');
  });

  it('takes the output options: --format, --quality, --max-width, --max-height', async () => {
    const input = join(dir, 'options.csv');
    writeFileSync(input, `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\nCat,${images.url('/chelsea.png')}\n`);
    const run = await runCli(['process', 'options.csv', '--out', 'opt/out.csv', '--format', 'webp', '--quality', '60', '--max-width', '64'], dir);
    expect(run.code, run.stderr).toBe(0);
    const files = readCsv(join(dir, 'opt/out.csv')).slice(1).map((r) => r[3]!);
    expect(files.every((f) => f.endsWith('.webp'))).toBe(true);
    for (const f of files) {
      const img = await webpDecode(new Uint8Array(readFileSync(join(dir, 'opt', f))).buffer);
      expect(img.width).toBe(64);
    }
    for (const [flag, value] of [['--quality', '0'], ['--format', 'gif'], ['--max-width', 'wide'], ['--max-height', '99999']]) {
      const bad = await runCli(['process', 'options.csv', '--out', 'opt/bad.csv', flag!, value!], dir);
      expect(bad.code, `${flag} ${value}`).toBe(2);
      expect(bad.stderr).toContain(flag!);
      expect(existsSync(join(dir, 'opt/bad.csv'))).toBe(false);
    }
  });

  it('takes repeatable --rendition name:key=value,... and writes a column per rendition', async () => {
    const input = join(dir, 'renditions.csv');
    writeFileSync(input, `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\nCat,${images.url('/chelsea.png')}\n`);
    const run = await runCli(['process', 'renditions.csv', '--out', 'rend/out.csv', '--max-width', '200',
      '--rendition', 'thumb:max_width=64,format=webp,quality=60', '--rendition', 'tall:max-height=100,format=jpeg', '--rendition', 'same'], dir);
    expect(run.code, run.stderr).toBe(0);
    const rows = readCsv(join(dir, 'rend/out.csv'));
    expect(rows[0]).toEqual(['S. No.', 'Product Name', 'Input Image Urls', 'Output Image Urls',
      'Output Image Urls (thumb)', 'Output Image Urls (tall)', 'Output Image Urls (same)']);
    const sources = [FIXTURES.jpg, FIXTURES.png];
    for (const [i, row] of rows.slice(1).entries()) {
      const src = readDimensions(sources[i]!, detectFormat(sources[i]!)!)!;
      const read = (ref: string) => new Uint8Array(readFileSync(join(dir, 'rend', ref)));
      const thumb = read(row[4]!);
      expect(detectFormat(thumb)).toBe('webp');
      expect((await webpDecode(thumb.slice().buffer)).width).toBe(64);
      const tall = read(row[5]!);
      expect(detectFormat(tall)).toBe('jpeg');
      expect((await decode(tall)).height).toBe(100);
      // no keys: every option is the request-level one (the same output)
      const same = read(row[6]!);
      expect(row[6]).toBe(row[3]);
      expect((await decode(same)).width).toBe(Math.min(200, src.width));
    }
    for (const spec of ['thumb:max_width', 'thumb:max_width=0', 'Bad:max_width=10', 'thumb:size=10']) {
      const bad = await runCli(['process', 'renditions.csv', '--out', 'rend/bad.csv', '--rendition', spec], dir);
      expect(bad.code, spec).toBe(2);
      expect(bad.stderr, spec).toContain('--rendition');
      expect(existsSync(join(dir, 'rend/bad.csv'))).toBe(false);
    }
  });

  it('takes --progressive, a bare flag: progressive JPEG out', async () => {
    const input = join(dir, 'progressive.csv');
    writeFileSync(input, `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\n`);
    const run = await runCli(['process', 'progressive.csv', '--out', 'prog/out.csv', '--format', 'jpeg', '--max-width', '100', '--progressive'], dir);
    expect(run.code, run.stderr).toBe(0);
    const [file] = readCsv(join(dir, 'prog/out.csv')).slice(1).map((r) => r[3]!);
    const out = new Uint8Array(readFileSync(join(dir, 'prog', file!)));
    expect(jpegFrame(out)?.progressive).toBe(true);
    expect((await independentDecode(out)).width).toBe(100);
  });

  it('converts an input-only format and says so in its summary', async () => {
    images.serve('/rocket.heic', fixture('rocket-small.heic'), 'image/heic');
    writeFileSync(join(dir, 'heic.csv'), `product_name,image_url\nRocket,${images.url('/rocket.heic')}\n`);
    const run = await runCli(['process', 'heic.csv', '--out', 'heic/out.csv'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Notes:\n  ${images.url('/rocket.heic')}: converted from HEIC`);
    const file = readCsv(join(dir, 'heic/out.csv'))[1]![3]!;
    expect(file.endsWith('.jpg')).toBe(true);
    const img = await jpegDecode(new Uint8Array(readFileSync(join(dir, 'heic', file))).buffer);
    expect([img.width, img.height]).toEqual([640, 427]);
  });

  it('exits 1 when an image fails, leaves its entry empty and says why', async () => {
    const input = join(dir, 'partial.csv');
    writeFileSync(input, [
      'product_name,image_url',
      `Rocket,${images.url('/rocket.jpg')}`,
      `Rocket,${images.url('/gone.jpg')}`,
      `Broken,${images.url('/_/html-as-jpeg')}`,
      '',
    ].join('\r\n'));
    const imagesDir = join(dir, 'partial-images');
    const run = await runCli(['process', input, '-o', join(dir, 'partial-out.csv'), '--out-dir', imagesDir, '--quiet'], dir);
    expect(run.code).toBe(1);
    const rows = readCsv(join(dir, 'partial-out.csv'));
    expect(rows.slice(1).map((r) => [r[0], r[1]])).toEqual([['1', 'Rocket'], ['2', 'Broken']]);
    const [ok, gone] = rows[1]![3]!.split(',');
    expect(gone).toBe('');
    expect(existsSync(resolve(dir, ok!))).toBe(true);
    expect(resolve(dir, ok!).startsWith(imagesDir)).toBe(true);
    expect(rows[2]![3]).toBe('');
    expect(run.stdout).toMatch(/Done with failures: 3 images of 2 products/);
    expect(run.stdout).toMatch(/succeeded: 1\s+failed: 2/);
    expect(run.stdout).toContain(`${images.url('/gone.jpg')}: HTTP 404`);
    expect(run.stdout).toContain(images.url('/_/html-as-jpeg'));
    expect(run.stderr).not.toContain('progress:'); // --quiet
  });

  it('a refused private source says how to allow it, naming no address', async () => {
    writeFileSync(join(dir, 'private.csv'), `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\n`);
    const run = await runCli(['process', 'private.csv', '--out', 'private-out.csv', '--quiet'], dir, { FETCH_ALLOWLIST: '' });
    expect(run.code).toBe(1);
    const line = run.stdout.split('\n').find((l) => l.includes('blocked'));
    // The row's own URL starts the line; the reason after it names no resolved address.
    expect(line).toBe(`  ${images.url('/rocket.jpg')}: blocked: a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)`);
  });

  it('exits 1 when every image fails', async () => {
    writeFileSync(join(dir, 'none.csv'), `S. No.,Product Name,Input Image Urls\n1,Gone,${images.url('/nothing.png')}\n`);
    const run = await runCli(['process', 'none.csv', '--out', 'none-out.csv'], dir);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^Failed: 1 image of 1 product/);
    expect(readCsv(join(dir, 'none-out.csv'))[1]).toEqual(['1', 'Gone', images.url('/nothing.png'), '']);
  });

  it('exits 2 with the line and column on a bad CSV, and writes nothing', async () => {
    writeFileSync(join(dir, 'bad.csv'), `S. No.,Product Name,Input Image Urls\n1,Rocket,${images.url('/rocket.jpg')}\n2,Bad,not-a-url\n`);
    const run = await runCli(['process', 'bad.csv', '--out', 'bad-out.csv'], dir);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/bad\.csv: line 3, column "Input Image Urls": "not-a-url" is not an absolute http\(s\) URL/);
    expect(existsSync(join(dir, 'bad-out.csv'))).toBe(false);
    expect(existsSync(join(dir, 'bad-out-images'))).toBe(false);
  });

  it('exits 2 on bad arguments, a missing file or a bad setting', async () => {
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [[], /no command given/],
      [['convert', 'x.csv'], /unknown command "convert"/],
      [['process', 'ok.csv'], /--out <output.csv> is required/],
      [['process', '--out', 'x.csv'], /the input CSV is missing/],
      [['process', 'ok.csv', '--out', 'x.csv', '--concurrency', '0'], /--concurrency: expected a whole number/],
      [['process', 'ok.csv', '--out', 'x.csv', '--bogus'], /Unknown option '--bogus'/],
      [['process', 'missing.csv', '--out', 'x.csv'], /missing\.csv: no such file/],
      [['process', 'ok.csv', '--out', 'x.csv'], /invalid configuration: JPEG_QUALITY/, { JPEG_QUALITY: '0' }],
    ];
    for (const [args, message, env] of cases) {
      const run = await runCli(args, dir, env);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    expect(readdirSync(dir)).not.toContain('x.csv');
  });

  it('prints usage with --help and the version with --version', async () => {
    const help = await runCli(['--help'], dir);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/image-csv-processor process <input.csv> --out <output.csv>/);
    const version = await runCli(['--version'], dir);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('is the package bin and starts with a shebang', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin['image-csv-processor']).toBe('dist/src/cli/main.js');
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
