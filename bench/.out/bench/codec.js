import sharp from "sharp";
import { defaultOptions as jsquashJpegDefaults } from "@jsquash/jpeg/meta.js";
import { applyOrientation, codecFor, encodePng, MOZJPEG_OPTIONS } from "../workers/codecs.js";
import { readExifOrientation } from "../src/codecs/sniff.js";
import { figure } from "./report.js";
import { median, now, round, sum } from "./stats.js";
const Q = 50;
async function oursPipeline(img) {
  const row = codecFor(img.bytes);
  if (!row) throw new Error(`${img.name}: no codec`);
  const decoded = await row.decode(img.bytes);
  const upright = applyOrientation(decoded, row.orientation(img.bytes));
  return row.encode(upright, { quality: Q });
}
function oursJpegWith(overrides) {
  return async (img) => {
    const saved = { ...MOZJPEG_OPTIONS };
    Object.assign(MOZJPEG_OPTIONS, overrides);
    try {
      return await oursPipeline(img);
    } finally {
      Object.assign(MOZJPEG_OPTIONS, saved);
    }
  };
}
const sharpJpeg = (opts) => async (img) => new Uint8Array(await sharp(img.bytes).rotate().jpeg({ quality: Q, ...opts }).toBuffer());
const references = /* @__PURE__ */ new Map();
async function reference(img) {
  let r = references.get(img.name);
  if (!r) {
    const rgb = await sharp(img.bytes).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rgba = await sharp(img.bytes).rotate().ensureAlpha().raw().toBuffer();
    r = { width: rgb.info.width, height: rgb.info.height, rgb: rgb.data, rgba };
    references.set(img.name, r);
  }
  return r;
}
function psnr(a, b) {
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? 99 : 10 * Math.log10(255 * 255 / mse);
}
async function check(img, out, alpha) {
  const ref = await reference(img);
  try {
    const pipeline = sharp(out);
    const { data, info } = await (alpha ? pipeline.ensureAlpha() : pipeline.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== ref.width || info.height !== ref.height) return `${img.name}: ${info.width}x${info.height}, expected ${ref.width}x${ref.height}`;
    const p = psnr(data, alpha ? ref.rgba : ref.rgb);
    if (p < 25) return `${img.name}: PSNR ${p.toFixed(1)} dB (garbage?)`;
    return p;
  } catch (err) {
    return `${img.name}: output does not decode (${err.message.split("\n")[0]})`;
  }
}
async function measureVariants(images, variants, rounds, repsPerImage = 1) {
  const results = [];
  for (const v of variants) {
    const failures = [];
    const psnrs = [];
    let bytes = 0;
    for (const img of images) {
      let out;
      try {
        out = await v.encode(img);
      } catch (err) {
        failures.push(`${img.name}: encode failed (${err.message})`);
        continue;
      }
      bytes += out.length;
      const c = await check(img, out, v.alpha ?? false);
      if (typeof c === "string") failures.push(c);
      else psnrs.push(c);
    }
    results.push({
      name: v.name,
      images: images.length * repsPerImage,
      msPerPass: NaN,
      imagesPerSecond: NaN,
      bytes,
      minPsnr: psnrs.length === images.length ? round(Math.min(...psnrs), 2) : null,
      meanPsnr: psnrs.length ? round(sum(psnrs) / psnrs.length, 2) : null,
      checked: failures.length === 0,
      failures,
      rounds: []
    });
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (k + r) % variants.length;
      const v = variants[i];
      if (results[i].failures.some((f) => f.includes("encode failed"))) continue;
      let ms = 0;
      for (let rep = 0; rep < repsPerImage; rep++) {
        for (const img of images) {
          const t0 = now();
          await v.encode(img);
          ms += now() - t0;
        }
      }
      results[i].rounds.push(ms);
    }
  }
  for (const res of results) {
    res.msPerPass = median(res.rounds);
    res.imagesPerSecond = res.images / (res.msPerPass / 1e3);
  }
  return results;
}
function speedRatio(a, b) {
  const n = Math.min(a.rounds.length, b.rounds.length);
  const ratios = [];
  for (let i = 0; i < n; i++) ratios.push(b.rounds[i] / a.rounds[i]);
  return median(ratios);
}
async function codecBench(corpus, opts) {
  sharp.concurrency(1);
  sharp.cache(false);
  const rounds = opts.quick ? 2 : 5;
  const jpegs = corpus.filter((i) => i.format === "jpeg");
  const pngs = corpus.filter((i) => i.format === "png");
  const webps = corpus.filter((i) => i.format === "webp");
  const figures = [];
  const libDefaults = { ...jsquashJpegDefaults, quality: Q, chroma_quality: Q };
  const jpegVariants = [
    { name: "ours (pipeline settings)", encode: oursPipeline },
    { name: "sharp mozjpeg:true", encode: sharpJpeg({ mozjpeg: true }) },
    { name: "sharp libjpeg-turbo (default)", encode: sharpJpeg({}) },
    { name: "ours, library defaults (progressive)", encode: oursJpegWith(libDefaults) },
    { name: "ours + progressive", encode: oursJpegWith({ progressive: true }) },
    { name: "ours, baseline:false (16-bit DQT)", encode: oursJpegWith({ baseline: false }) },
    { name: "ours, optimize_coding:false", encode: oursJpegWith({ optimize_coding: false }) },
    { name: "ours + trellis_opt_zero/opt_table", encode: oursJpegWith({ trellis_opt_zero: true, trellis_opt_table: true }) },
    { name: "ours + trellis_multipass", encode: oursJpegWith({ trellis_multipass: true }) },
    { name: "ours, trellis_loops:2", encode: oursJpegWith({ trellis_loops: 2 }) },
    { name: 'ours, trellis_loops:0 (trellis "off")', encode: oursJpegWith({ trellis_loops: 0 }) },
    { name: "sharp mozjpeg, sequential", encode: sharpJpeg({ mozjpeg: true, progressive: false, optimiseScans: false }) }
  ];
  const used = opts.quick ? jpegVariants.slice(0, 5) : jpegVariants;
  opts.log(`codec: JPEG, ${jpegs.length} images x ${used.length} variants x ${rounds} rounds`);
  const jr = await measureVariants(jpegs, used, rounds);
  const ours = jr[0];
  const moz = jr[1];
  const turbo = jr[2];
  const jpegRows = jr.map((v) => ({ ...v, speedVsSharpMoz: round(speedRatio(v, moz), 3), bytesVsSharpMoz: round(v.bytes / moz.bytes, 4) }));
  const sp = speedRatio(ours, moz);
  const by = ours.bytes / moz.bytes;
  figures.push(
    figure("codec.jpeg.ours_ips", "JPEG ours: images/s per thread", round(ours.imagesPerSecond, 2), "img/s"),
    figure("codec.jpeg.sharp_mozjpeg_ips", "JPEG sharp mozjpeg: images/s per thread", round(moz.imagesPerSecond, 2), "img/s"),
    figure("codec.jpeg.sharp_turbo_ips", "JPEG sharp libjpeg-turbo: images/s per thread", round(turbo.imagesPerSecond, 2), "img/s"),
    figure("codec.jpeg.speed_vs_mozjpeg", "JPEG ours speed / sharp mozjpeg", round(sp, 3), "x", ">= 1.0x", sp >= 1),
    figure("codec.jpeg.bytes_vs_mozjpeg", "JPEG ours bytes / sharp mozjpeg", round(by, 4), "x", "<= 1.03x", by <= 1.03),
    figure("codec.jpeg.bytes_vs_turbo", "JPEG ours bytes / sharp libjpeg-turbo", round(ours.bytes / turbo.bytes, 4), "x", "well below 1 (report)", null),
    figure("codec.jpeg.checked", "JPEG outputs decoded + checked (ours, sharp x2)", [ours, moz, turbo].every((v) => v.checked) ? 1 : 0, "", "all decode, right size, PSNR sane", [ours, moz, turbo].every((v) => v.checked))
  );
  const pngReport = {};
  const pngVariants = [
    {
      name: "ours (pipeline settings)",
      alpha: true,
      async encode(img) {
        const row = codecFor(img.bytes);
        const rep = await encodePng(await row.decode(img.bytes));
        pngReport[img.name] = rep.mode === "palette" ? `palette ${rep.colours} colours, q${rep.quality}` : "lossless (palette below min quality)";
        return rep.bytes;
      }
    },
    { name: "sharp png palette:true", alpha: true, encode: async (img) => new Uint8Array(await sharp(img.bytes).png({ palette: true }).toBuffer()) },
    { name: "sharp png palette:true quality:80", alpha: true, encode: async (img) => new Uint8Array(await sharp(img.bytes).png({ palette: true, quality: 80 }).toBuffer()) }
  ];
  opts.log(`codec: PNG, ${pngs.length} images x ${pngVariants.length} variants x ${rounds} rounds`);
  const pr = pngs.length ? await measureVariants(pngs, pngVariants, rounds) : [];
  const pngRows = pr.map((v) => ({ ...v, speedVsSharp: round(speedRatio(v, pr[1]), 3), bytesVsSharp: round(v.bytes / pr[1].bytes, 4) }));
  if (pr[0]) pr[0].extra = { modes: pngReport };
  if (pngRows.length) {
    const o = pngRows[0];
    figures.push(
      figure("codec.png.ours_ips", "PNG ours: images/s per thread", round(o.imagesPerSecond, 2), "img/s"),
      figure("codec.png.sharp_ips", "PNG sharp palette:true: images/s per thread", round(pr[1].imagesPerSecond, 2), "img/s"),
      figure("codec.png.speed_vs_sharp", "PNG ours speed / sharp palette:true", o.speedVsSharp, "x", ">= 1.0x (JPEG yardstick)", o.speedVsSharp >= 1),
      figure("codec.png.bytes_vs_sharp", "PNG ours bytes / sharp palette:true", o.bytesVsSharp, "x", "<= 1.03x (JPEG yardstick)", o.bytesVsSharp <= 1.03),
      figure("codec.png.checked", "PNG outputs decoded + checked", pr.every((v) => v.checked) ? 1 : 0, "", "all decode, right size, PSNR sane", pr.every((v) => v.checked))
    );
  }
  const webpVariants = [
    { name: "ours (pipeline settings)", alpha: true, encode: oursPipeline },
    { name: "sharp webp q50", alpha: true, encode: async (img) => new Uint8Array(await sharp(img.bytes).webp({ quality: Q }).toBuffer()) }
  ];
  const reps = opts.quick ? 3 : 6;
  opts.log(`codec: WebP, ${webps.length} images x ${reps} reps x ${webpVariants.length} variants x ${rounds} rounds`);
  const wr = webps.length ? await measureVariants(webps, webpVariants, rounds, reps) : [];
  const webpRows = wr.map((v) => ({ ...v, speedVsSharp: round(speedRatio(v, wr[1]), 3), bytesVsSharp: round(v.bytes / wr[1].bytes, 4) }));
  if (webpRows.length) {
    const o = webpRows[0];
    figures.push(
      figure("codec.webp.ours_ips", "WebP ours: images/s per thread", round(o.imagesPerSecond, 2), "img/s"),
      figure("codec.webp.sharp_ips", "WebP sharp q50: images/s per thread", round(wr[1].imagesPerSecond, 2), "img/s"),
      figure("codec.webp.speed_vs_sharp", "WebP ours speed / sharp q50", o.speedVsSharp, "x", ">= 1.0x (JPEG yardstick)", o.speedVsSharp >= 1),
      figure("codec.webp.bytes_vs_sharp", "WebP ours bytes / sharp q50", o.bytesVsSharp, "x", "<= 1.03x (JPEG yardstick)", o.bytesVsSharp <= 1.03),
      figure("codec.webp.checked", "WebP outputs decoded + checked", wr.every((v) => v.checked) ? 1 : 0, "", "all decode, right size, PSNR sane", wr.every((v) => v.checked))
    );
  }
  return {
    figures,
    jpeg: { images: jpegs.map((i) => i.name), variants: jpegRows },
    png: { images: pngs.map((i) => i.name), variants: pngRows },
    webp: { images: webps.map((i) => i.name), variants: webpRows }
  };
}
function tradeOffTable(rows) {
  const head = "| settings | img/s/thread | speed vs sharp-mozjpeg | bytes vs sharp-mozjpeg | min / mean PSNR (dB) | check |";
  const lines = rows.map((r) => `| ${r.name} | ${Number.isFinite(r.imagesPerSecond) ? r.imagesPerSecond.toFixed(2) : "n/a"} | ${Number.isFinite(r.speedVsSharpMoz) ? r.speedVsSharpMoz.toFixed(2) + "x" : "n/a"} | ${r.bytesVsSharpMoz.toFixed(3)}x | ${r.minPsnr ?? "n/a"} / ${r.meanPsnr ?? "n/a"} | ${r.checked ? "ok" : "FAIL: " + r.failures[0]} |`);
  return [head, "|---|---|---|---|---|---|", ...lines].join("\n");
}
const orientationOf = (img) => img.format === "jpeg" ? readExifOrientation(img.bytes) : 1;
export {
  codecBench,
  measureVariants,
  orientationOf,
  speedRatio,
  tradeOffTable
};
//# sourceMappingURL=codec.js.map
