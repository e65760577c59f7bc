import { appendFileSync } from "node:fs";
import { threadId } from "node:worker_threads";
import { move, transferableSymbol, valueSymbol, workerData } from "piscina";
import { readDimensions, stripMetadata } from "../src/codecs/sniff.js";
import { applyOrientation, CodecError, codecFor, warmUp } from "./codecs.js";
const config = workerData ?? {};
class Transferred {
  constructor(out) {
    this.out = out;
  }
  out;
  get [transferableSymbol]() {
    return [this.out.bytes.buffer];
  }
  get [valueSymbol]() {
    return this.out;
  }
}
function logCodecRun(format, bytesIn) {
  if (!config.codecRunLog) return;
  appendFileSync(config.codecRunLog, `${process.pid} ${threadId} ${format} ${bytesIn}
`);
}
async function compress(task) {
  if ("warmUp" in task) {
    await warmUp();
    return { ok: true };
  }
  const { bytes, maxPixels, jpegQuality } = task;
  const row = codecFor(bytes);
  if (!row) throw new CodecError("unsupported image format");
  const declared = readDimensions(bytes, row.format);
  if (!declared) throw new CodecError(`${row.format.toUpperCase()} decode failed: unreadable header`);
  const pixels = declared.width * declared.height;
  if (pixels > maxPixels) {
    throw new CodecError(`image too large: ${declared.width}x${declared.height} (${pixels} pixels) exceeds the limit of ${maxPixels} pixels`);
  }
  logCodecRun(row.format, bytes.length);
  const decoded = await row.decode(bytes);
  if (decoded.width !== declared.width || decoded.height !== declared.height) {
    throw new CodecError(`${row.format.toUpperCase()} decode failed: size differs from the header`);
  }
  const orientation = row.orientation(bytes);
  const upright = applyOrientation(decoded, orientation);
  const encoded = await row.encode(upright, { quality: jpegQuality });
  let out = encoded;
  let keptSource = false;
  if (encoded.length >= bytes.length && orientation === 1) {
    const stripped = stripMetadata(bytes, row.format);
    if (stripped && stripped.length < encoded.length) {
      out = stripped.byteLength === stripped.buffer.byteLength ? stripped : stripped.slice();
      keptSource = true;
    }
  }
  const result = {
    bytes: out,
    format: row.format,
    width: upright.width,
    height: upright.height,
    bytesIn: bytes.length,
    bytesOut: out.length,
    keptSource
  };
  return move(new Transferred(result));
}
export {
  compress as default
};
//# sourceMappingURL=compress.js.map
