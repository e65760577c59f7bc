// node dist/bench/diag/jpeg-steps.js: where a JPEG q50 re-encode spends its time, step by step,
// in this thread, for a corpus-sized photo and a generated 12 MP one (4000x3000 q90), with the
// pool's instance keep limit (32 MiB: grown instances dropped after each step) and with instances
// kept. Steps as workers/compress.ts runs them; median of 5 runs after a warm-up.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CODECS, releaseGrown } from '../../workers/codecs.js';
import { collectGarbage, setKeepLimit } from '../../workers/codecs/wasm.js';
import { generatedPhoto } from '../generated-photo.js';
import { median, now } from '../stats.js';

const corpus = resolve(process.argv[2] ?? '../shared/corpus');
const inputs: [string, Uint8Array][] = [
  ['Autumn.jpg (1500x937)', new Uint8Array(readFileSync(resolve(corpus, 'Autumn.jpg')))],
  ['generated 4000x3000 q90', new Uint8Array(await generatedPhoto(4000, 3000, 1, { quality: 90, shapes: true }))],
];
const codec = CODECS.jpeg;

for (const [keep, label] of [[32 * 1024 * 1024, 'keep limit 32 MiB (pool default)'], [2 ** 31, 'instances kept']] as const) {
  setKeepLimit(keep);
  for (const [name, bytes] of inputs) {
    const steps: Record<string, number[]> = {};
    const add = (k: string, ms: number) => (steps[k] ??= []).push(ms);
    for (let run = 0; run < 6; run++) {
      let t = now();
      const img = await codec.decode(bytes);
      add('decode (WASM + copy out)', now() - t);
      t = now();
      releaseGrown();
      add('release grown after decode', now() - t);
      t = now();
      const out = await codec.encode(img, { quality: 50 });
      add('encode (copy in + WASM)', now() - t);
      t = now();
      releaseGrown();
      add('release grown after encode', now() - t);
      t = now();
      if (img.width * img.height > 4_000_000) collectGarbage();
      add('forced GC (large images)', now() - t);
      if (run === 0) for (const k of Object.keys(steps)) steps[k] = []; // warm-up
      void out;
    }
    const total = Object.values(steps).reduce((a, xs) => a + median(xs), 0);
    console.log(`${label}, ${name}: ${total.toFixed(0)} ms`);
    for (const [k, xs] of Object.entries(steps)) console.log(`  ${k.padEnd(30)} ${median(xs).toFixed(1).padStart(8)} ms  ${((median(xs) / total) * 100).toFixed(0).padStart(3)}%`);
  }
}
