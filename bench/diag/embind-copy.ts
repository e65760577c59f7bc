// node dist/bench/diag/embind-copy.js [CORPUS]: how much of a MozJPEG encode is the embind glue
// copying the RGBA input into WASM memory one byte at a time (std::string marshalling in
// @jsquash/jpeg's mozjpeg_enc.js), measured by encoding the same images with the shipped glue and
// with a copy of the glue whose loop is replaced by HEAPU8.set, alternating, same options.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODECS, MOZJPEG_OPTIONS } from '../../workers/codecs.js';
import { loadCorpus } from '../corpus.js';
import { median, now } from '../stats.js';

const require = createRequire(import.meta.url);
const gluePath = require.resolve('@jsquash/jpeg/codec/enc/mozjpeg_enc.js');
const wasm = new WebAssembly.Module(readFileSync(require.resolve('@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm')));
const LOOP = 'for(var i=0;i<length;++i){HEAPU8[ptr+i]=value[i]}';

interface Enc { encode(data: Uint8ClampedArray, w: number, h: number, o: typeof MOZJPEG_OPTIONS): Uint8Array }

async function load(url: string): Promise<Enc> {
  const factory = (await import(url)).default as (o: Record<string, unknown>) => Promise<Enc>;
  return factory({
    noInitialRun: true, print: () => {}, printErr: () => {},
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(wasm, imports);
      done(instance);
      return instance.exports;
    },
  });
}

const src = readFileSync(gluePath, 'utf8');
if (!src.includes(LOOP)) throw new Error('the glue no longer contains the byte loop');
const dir = mkdtempSync(join(tmpdir(), 'embind-'));
const patchedPath = join(dir, 'mozjpeg_enc.patched.mjs');
writeFileSync(patchedPath, src.replace(LOOP, 'HEAPU8.set(value,ptr)'));

const shipped = await load(pathToFileURL(gluePath).href);
const patched = await load(pathToFileURL(patchedPath).href);
const corpus = loadCorpus(resolve(process.argv[2] ?? '../shared/corpus')).filter((i) => i.format === 'jpeg' && i.width >= 1000);
const rasters = await Promise.all(corpus.map((i) => CODECS.jpeg.decode(i.bytes)));
const opts = { ...MOZJPEG_OPTIONS };
const tS: number[] = [];
const tP: number[] = [];
let same = true;
for (const r of rasters) {
  same &&= Buffer.from(patched.encode(r.data, r.width, r.height, opts)).equals(Buffer.from(shipped.encode(r.data, r.width, r.height, opts)));
}
for (let round = 0; round < 5; round++) {
  for (const enc of round % 2 ? [patched, shipped] : [shipped, patched]) {
    const t0 = now();
    for (const r of rasters) enc.encode(r.data, r.width, r.height, opts);
    (enc === shipped ? tS : tP).push(now() - t0);
  }
}
const s = median(tS);
const p = median(tP);
console.log(JSON.stringify({ images: rasters.length, shippedMsPerImage: +(s / rasters.length).toFixed(1), patchedMsPerImage: +(p / rasters.length).toFixed(1), encodeSpeedup: +(s / p).toFixed(3), identicalOutput: same }));
