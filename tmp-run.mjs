import { readFileSync, readdirSync } from 'node:fs';
import sharp from 'sharp';
const { default: compress } = await import('/work/wt/formats/dist/workers/compress.js');
const ref = await sharp('/tmp/fmt/base.png').removeAlpha().stats();
const mean = (s) => s.channels.slice(0, 3).map((c) => Math.round(c.mean));
console.log('ref', mean(ref));
for (const f of (process.argv[2] ? [process.argv[2]] : readdirSync('/tmp/fmt').filter((f) => /\.(tif|bmp|gif|heic|jpg)$/.test(f)))) {
  try {
    const out = await compress({ bytes: new Uint8Array(readFileSync('/tmp/fmt/' + f)), options: { quality: 80, format: 'original', maxWidth: null, maxHeight: null }, maxPixels: 50e6 });
    const o = out[(await import('piscina')).valueSymbol] ?? out;
    const st = await sharp(Buffer.from(o.bytes)).flatten({background:'#fff'}).stats();
    const meta = await sharp(Buffer.from(o.bytes)).metadata();
    console.log(f, o.format, o.width, o.height, meta.width, meta.height, o.outcome, JSON.stringify(o.note), mean(st));
  } catch (e) { console.log(f, 'ERR', e.message); }
}
