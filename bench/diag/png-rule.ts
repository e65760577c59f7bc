// The PNG palette rule's trade-off table: for each image and libimagequant target, the palette's
// SSIM (the rule's own measure, workers/codecs/ssim.ts), its SSIMULACRA2 (bench/quality-metric.ts),
// and its bytes against the lossless OxiPNG output and sharp's palette:true. Images: the corpus
// PNGs, three corpus photos scaled to 600 px wide (a photo saved as PNG), and generated worst
// cases (a smooth gradient, a soft alpha ramp over it, a flat graphic).
//   node dist/bench/diag/png-rule.js [corpus dir] > table.md
import { resolve } from 'node:path';
import sharp from 'sharp';
import { encodePng, PNG_OPTIONS } from '../../workers/codecs.js';
import { loadCorpus } from '../corpus.js';
import { measureQuality } from '../quality-metric.js';

interface Source {
  name: string;
  data: Uint8Array;
  width: number;
  height: number;
}

async function rgba(input: Buffer | Uint8Array, name: string, resizeTo?: number): Promise<Source> {
  let p = sharp(input).rotate();
  if (resizeTo) p = p.resize({ width: resizeTo });
  const { data, info } = await p.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { name, data, width: info.width, height: info.height };
}

function generated(): Source[] {
  const w = 512;
  const h = 384;
  const gradient = new Uint8Array(w * h * 4);
  const ramp = new Uint8Array(w * h * 4);
  const flat = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const px = [(x / w) * 255, (y / h) * 255, 128 + 100 * Math.sin((x + y) / 90)];
      gradient.set([...px, 255], i);
      const r = Math.hypot(x - w / 2, y - h / 2) / (h / 2);
      ramp.set([...px, Math.max(0, Math.min(255, 255 * (1.2 - r)))], i);
      // a logo: three flat colours, antialiased circle edge
      const d = Math.hypot(x - 200, y - 190) - 120;
      const cov = Math.max(0, Math.min(1, 0.5 - d));
      const bg = x > 380 ? [20, 40, 160] : [250, 250, 250];
      flat.set([bg[0]! * (1 - cov) + 230 * cov, bg[1]! * (1 - cov) + 60 * cov, bg[2]! * (1 - cov) + 30 * cov, 255], i);
    }
  }
  return [
    { name: 'generated: smooth gradient', data: gradient, width: w, height: h },
    { name: 'generated: soft alpha ramp', data: ramp, width: w, height: h },
    { name: 'generated: flat graphic', data: flat, width: w, height: h },
  ];
}

const corpusDir = resolve(process.argv[2] ?? '../shared/corpus');
const corpus = loadCorpus(corpusDir);
const sources: Source[] = [];
for (const img of corpus.filter((i) => i.format === 'png')) sources.push(await rgba(img.bytes, img.name));
for (const img of corpus.filter((i) => i.format === 'jpeg' && i.width >= 1000).slice(0, 3)) sources.push(await rgba(img.bytes, `${img.name} at 600 px`, 600));
sources.push(...generated());

const targets = [80, 90, 100];
console.log('| image | lossless bytes | sharp palette:true bytes / SSIMULACRA2 | ' + targets.map((t) => `target ${t}: colours, liq q, SSIM, SSIMULACRA2, bytes vs lossless`).join(' | ') + ' |');
console.log('|---|---|---|' + targets.map(() => '---').join('|') + '|');
for (const s of sources) {
  const raster = { data: new Uint8ClampedArray(s.data.buffer, s.data.byteOffset, s.data.length), width: s.width, height: s.height };
  const lossless = await encodePng(raster, { ...PNG_OPTIONS, minQuality: 0, minSsim: 2 });
  const rawInput = { raw: { width: s.width, height: s.height, channels: 4 as const } };
  const sharpOut = await sharp(s.data, rawInput).png({ palette: true }).toBuffer();
  const score = async (png: Uint8Array) => {
    const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    return (await measureQuality({ ref: s.data, dist: data, width: s.width, height: s.height, alpha: true })).ssimulacra2;
  };
  const cells: string[] = [];
  for (const t of targets) {
    const r = await encodePng(raster, { ...PNG_OPTIONS, minQuality: 0, targetQuality: t, minSsim: 0 });
    cells.push(`${r.colours}, ${r.quality}, ${r.ssim!.toFixed(4)}, ${(await score(r.bytes)).toFixed(1)}, ${(r.bytes.length / lossless.bytes.length).toFixed(3)}x`);
  }
  console.log(`| ${s.name} | ${lossless.bytes.length} | ${sharpOut.length} / ${(await score(sharpOut)).toFixed(1)} | ${cells.join(' | ')} |`);
}
