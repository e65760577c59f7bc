// node dist/bench/diag/webp-method.js [corpus dir] [photos]: the libwebp `method` trade-off for
// the corpus's JPEG and WebP photos -> WebP at q50, one thread (METHODS=2,4 to try fewer). For each method: encode time of our WASM libwebp (SIMD build,
// the pipeline's settings otherwise) against sharp's whole .webp({quality: 50}) path, and bytes at
// matched SSIMULACRA2: each output scored against the decoded source, sharp's quality searched
// until it scores the same (bench/quality.ts matchSetting), its bytes interpolated there.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import sharp from 'sharp';
import { codecFor, WEBP_OPTIONS } from '../../workers/codecs.js';
import { emscripten } from '../../workers/codecs/wasm.js';
import { matchSetting, type Point } from '../quality.js';
import { measureQuality } from '../quality-metric.js';
import { median, now } from '../stats.js';

const corpus = resolve(process.argv[2] ?? '../shared/corpus');
const count = Number(process.argv[3] ?? 6);
const METHODS = (process.env.METHODS ?? '1,2,3,4').split(',').map(Number);
sharp.concurrency(1);

type Encoder = { encode(d: Uint8ClampedArray, w: number, h: number, o: typeof WEBP_OPTIONS): Uint8Array };
const encoder = (await emscripten<Encoder>('@jsquash/webp/codec/enc/webp_enc_simd.js', '@jsquash/webp/codec/enc/webp_enc_simd.wasm')).module;
const rgba = async (b: Uint8Array | Buffer) => new Uint8Array((await sharp(b).ensureAlpha().raw().toBuffer()).buffer);

const files = readdirSync(corpus).filter((f) => /\.(jpg|webp)$/.test(f)).slice(0, count);
const totals = new Map<string, { ms: number[]; bytes: number; matched: number; score: number }>();
const add = (k: string, ms: number, bytes: number, matched: number, score: number) => {
  const t = totals.get(k) ?? { ms: [], bytes: 0, matched: 0, score: 0 };
  t.ms.push(ms);
  t.bytes += bytes;
  t.matched += matched;
  t.score += score / files.length;
  totals.set(k, t);
};

for (const f of files) {
  const bytes = new Uint8Array(readFileSync(resolve(corpus, f)));
  const codec = codecFor(bytes)!;
  const img = await codec.decode(bytes);
  const ref = await rgba(bytes);
  const score = async (out: Uint8Array | Buffer) => measureQuality({ ref, dist: await rgba(out), width: img.width, height: img.height, alpha: false });
  const sharpAt = async (q: number): Promise<Point> => {
    const out = await sharp(bytes).webp({ quality: q }).toBuffer();
    return { q, bytes: out.length, ...(await score(out)) };
  };
  const timed = async (fn: () => Promise<unknown> | unknown) => {
    const xs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = now();
      await fn();
      xs.push(now() - t);
    }
    return median(xs);
  };
  const sharpMs = await timed(() => sharp(bytes).webp({ quality: 50 }).toBuffer());
  const decodeMs = await timed(() => codec.decode(bytes));
  const sharp50 = await sharpAt(50);
  add('sharp q50 (method 4)', sharpMs, sharp50.bytes, sharp50.bytes, sharp50.ssimulacra2);
  for (const method of METHODS) {
    let out: Uint8Array = new Uint8Array();
    const encodeMs = await timed(() => (out = encoder.encode(img.data, img.width, img.height, { ...WEBP_OPTIONS, quality: 50, method })));
    const q = await score(out);
    const match = await matchSetting(q.ssimulacra2, sharpAt, 50, [sharp50]);
    add(`ours method ${method}`, decodeMs + encodeMs, out.length, match.bytes ?? NaN, q.ssimulacra2);
    console.log(`${f} method ${method}: ${out.length} B at ${q.ssimulacra2.toFixed(2)}, sharp ${match.bytes?.toFixed(0)} B there; decode + encode ${(decodeMs + encodeMs).toFixed(0)} ms`);
  }
}

const sharpRow = totals.get('sharp q50 (method 4)')!;
console.log(`\n${files.length} corpus photos (${files.join(', ')}) -> WebP q50, one thread (ours: our decode + the encode)`);
console.log('| encoder | ms per image | speed vs sharp | bytes | mean SSIMULACRA2 | bytes vs sharp at the same score |');
console.log('|---|---|---|---|---|---|');
for (const [k, t] of totals) {
  const ms = t.ms.reduce((a, b) => a + b, 0) / t.ms.length;
  const sharpMs = sharpRow.ms.reduce((a, b) => a + b, 0) / sharpRow.ms.length;
  console.log(`| ${k} | ${ms.toFixed(0)} | ${(sharpMs / ms).toFixed(2)}x | ${t.bytes} | ${t.score.toFixed(2)} | ${(t.bytes / t.matched).toFixed(3)}x |`);
}
