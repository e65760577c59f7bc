import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { detectFormat, readDimensions } from "../src/codecs/sniff.js";
function loadCorpus(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    let bytes;
    try {
      bytes = new Uint8Array(readFileSync(join(dir, name)));
    } catch {
      continue;
    }
    const format = detectFormat(bytes);
    if (!format) continue;
    const dims = readDimensions(bytes, format);
    if (!dims) continue;
    out.push({ name, format, bytes, width: dims.width, height: dims.height });
  }
  if (out.length === 0) throw new Error(`no images in ${dir}`);
  return out;
}
const ofFormat = (images, f) => images.filter((i) => i.format === f);
export {
  loadCorpus,
  ofFormat
};
//# sourceMappingURL=corpus.js.map
