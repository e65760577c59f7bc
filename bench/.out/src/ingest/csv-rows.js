import { Readable, pipeline } from "node:stream";
import { Parser } from "csv-parse";
import { z } from "zod";
import { AppError } from "../errors.js";
function csvLimitsFromConfig(config) {
  return {
    maxRows: config.MAX_ROWS,
    maxUrlsPerProduct: config.MAX_URLS_PER_PRODUCT,
    maxCellChars: config.MAX_CELL_CHARS,
    batchSize: config.INGEST_BATCH_ROWS
  };
}
function normalizeHeader(s) {
  return s.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}
const ALIASES = {
  serial: /* @__PURE__ */ new Set([
    "sno",
    "sn",
    "snum",
    "srno",
    "slno",
    "serial",
    "serialno",
    "serialnum",
    "serialnumber",
    "no",
    "num",
    "number"
  ]),
  name: /* @__PURE__ */ new Set(["productname", "name", "product", "producttitle", "title", "itemname", "item"]),
  urls: /* @__PURE__ */ new Set([
    "inputimageurls",
    "inputimageurl",
    "imageurls",
    "imageurl",
    "inputurls",
    "inputurl",
    "urls",
    "url",
    "images",
    "image",
    "imagelinks",
    "imagelink",
    "inputimages",
    "inputimage"
  ])
};
const EXPECTED_HEADERS = '"S. No.,Product Name,Input Image Urls" (one row per product) or "product_name,image_url" (one row per image)';
function readHeader(record, line) {
  const labels = record.map((c) => c.trim());
  const index = {};
  labels.forEach((label, i) => {
    const n = normalizeHeader(label);
    for (const key of Object.keys(ALIASES)) {
      if (!ALIASES[key].has(n)) continue;
      const prev = index[key];
      if (prev !== void 0) {
        throw new AppError(400, `line ${line}, column "${label}": duplicate column, "${labels[prev]}" already is the ${describeKey(key)} column`);
      }
      index[key] = i;
    }
  });
  const format = index.serial !== void 0 ? "seed" : "simple";
  for (const key of ["name", "urls"]) {
    if (index[key] === void 0) {
      const want = key === "name" ? format === "seed" ? "Product Name" : "product_name" : format === "seed" ? "Input Image Urls" : "image_url";
      throw new AppError(
        400,
        `line ${line}, column "${want}": required column is missing; the header has ${labels.map((l) => JSON.stringify(l)).join(", ")}, expected ${EXPECTED_HEADERS}`
      );
    }
  }
  return { line, labels, index, format };
}
function describeKey(key) {
  return key === "serial" ? "serial number" : key === "name" ? "product name" : "image URL";
}
function columnLabel(header, fieldIndex) {
  const label = header?.labels[fieldIndex];
  return label !== void 0 && label !== "" ? `column "${label}"` : `column ${fieldIndex + 1}`;
}
const hex = (b) => `0x${b.toString(16).toUpperCase().padStart(2, "0")}`;
class ByteScanner {
  line = 1;
  recordLine = 1;
  field = 0;
  inQuotes = false;
  // UTF-8 state: continuation bytes still expected and the allowed range of the next one.
  need = 0;
  lower = 128;
  upper = 191;
  lead = 0;
  total = 0;
  problem = null;
  /** Returns -1 when the chunk is clean, else the offset of the first bad byte. */
  scan(buf) {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (this.need > 0) {
        if (b < this.lower || b > this.upper) return this.fail(i, this.notUtf8(this.lead));
        this.lower = 128;
        this.upper = 191;
        this.need--;
        continue;
      }
      if (b < 128) {
        if (b === 34) this.inQuotes = !this.inQuotes;
        else if (b === 44) {
          if (!this.inQuotes) this.field++;
        } else if (b === 10) {
          this.line++;
          if (!this.inQuotes) {
            this.field = 0;
            this.recordLine = this.line;
          }
        } else if (b < 32 && b !== 9 && b !== 13) {
          return this.fail(i, `contains the control character ${hex(b)}: this looks like binary data, not a CSV text file`);
        }
        continue;
      }
      this.lead = b;
      if (b >= 194 && b <= 223) this.need = 1;
      else if (b >= 224 && b <= 239) {
        this.need = 2;
        if (b === 224) this.lower = 160;
        else if (b === 237) this.upper = 159;
      } else if (b >= 240 && b <= 244) {
        this.need = 3;
        if (b === 240) this.lower = 144;
        else if (b === 244) this.upper = 143;
      } else {
        const utf16 = this.total + i === 0 && (b === 255 || b === 254);
        return this.fail(i, utf16 ? "the file is UTF-16; save it as UTF-8 (CSV UTF-8)" : this.notUtf8(b));
      }
    }
    this.total += buf.length;
    return -1;
  }
  /** Call at end of input: a multi-byte sequence cut short is an error too. */
  finish() {
    if (this.need > 0 && !this.problem) this.fail(0, this.notUtf8(this.lead));
  }
  notUtf8(b) {
    return `byte ${hex(b)} is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)`;
  }
  fail(offset, reason) {
    this.problem = { line: this.line, recordLine: this.recordLine, field: this.field, reason };
    return offset;
  }
}
function toBuffer(chunk) {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
async function* iterateBytes(source) {
  if ("getReader" in source && typeof source.getReader === "function") {
    const reader = source.getReader();
    let finished = false;
    try {
      for (; ; ) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        yield value;
      }
    } finally {
      if (!finished) await reader.cancel().catch(() => {
      });
      reader.releaseLock();
    }
  } else {
    yield* source;
  }
}
async function* scannedBytes(source, scanner) {
  for await (const chunk of iterateBytes(source)) {
    if (chunk.byteLength === 0) continue;
    const bad = scanner.scan(chunk);
    if (bad >= 0) {
      if (bad > 0) yield toBuffer(chunk.subarray(0, bad));
      return;
    }
    yield toBuffer(chunk);
  }
  scanner.finish();
}
const quote = (s, max = 200) => JSON.stringify(s.length > max ? `${s.slice(0, max)}\u2026` : s);
function urlProblem(u) {
  if (/\s/.test(u)) return `${quote(u)} contains whitespace; separate URLs with commas and write spaces inside a URL as %20`;
  let parsed;
  try {
    parsed = new URL(u);
  } catch {
    const hint = /^[\w.-]+\.[a-z]{2,}(\/|$)/i.test(u) ? " (add http:// or https://)" : "";
    return `${quote(u)} is not an absolute http(s) URL${hint}`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `${quote(u)} is not an http(s) URL (scheme "${parsed.protocol.slice(0, -1)}")`;
  }
  if (!parsed.hostname) return `${quote(u)} has no host`;
  return null;
}
function buildRowSchemas(limits) {
  const cell = () => z.string().max(limits.maxCellChars, { error: `cell is longer than ${limits.maxCellChars} characters` }).trim();
  const serial = cell().transform((s, ctx) => {
    if (s === "") {
      ctx.issues.push({ code: "custom", message: "serial number is empty", input: s });
      return z.NEVER;
    }
    const n = /^\d{1,15}$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      ctx.issues.push({ code: "custom", message: `${quote(s)} is not a positive integer serial number`, input: s });
      return z.NEVER;
    }
    return n;
  });
  const name = cell().min(1, { error: "product name is empty" });
  const urls = cell().transform((s, ctx) => {
    const out = [];
    const seen = /* @__PURE__ */ new Set();
    for (const piece of s.split(/[,\r\n]/)) {
      const u = piece.trim();
      if (u === "") continue;
      const problem = urlProblem(u);
      if (problem) {
        ctx.issues.push({ code: "custom", message: problem, input: s });
        return z.NEVER;
      }
      if (seen.has(u)) continue;
      seen.add(u);
      out.push(u);
    }
    if (out.length === 0) {
      ctx.issues.push({ code: "custom", message: "no image URL (the cell is empty)", input: s });
      return z.NEVER;
    }
    return out;
  });
  return {
    seed: z.object({ serial, name, urls }),
    simple: z.object({ name, urls })
  };
}
function csvErrorDetail(err, line, header, limits) {
  const col = typeof err.index === "number" ? `, ${columnLabel(header, err.index)}` : "";
  switch (err.code) {
    case "CSV_QUOTE_NOT_CLOSED":
      return `line ${line}${col}: a quoted cell is never closed (missing closing ")`;
    case "INVALID_OPENING_QUOTE":
      return `line ${line}${col}: a quote (") inside an unquoted cell; quote the whole cell and double the quotes inside it ("")`;
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return `line ${line}${col}: unexpected text after a closing quote; a cell that starts with a quote must end with one`;
    case "CSV_MAX_RECORD_SIZE":
      return `line ${line}${col}: row is longer than ${limits.recordChars} characters (is a quote left open?)`;
    default:
      return `line ${line}${col}: malformed CSV: ${err.message}`;
  }
}
function isCsvError(err) {
  const code = err instanceof Error ? err.code : void 0;
  return typeof code === "string" && /^(CSV_|INVALID_)/.test(code);
}
class CsvFailure {
  constructor(error) {
    this.error = error;
  }
  error;
}
class InBandErrorParser extends Parser {
  _transform(chunk, encoding, callback) {
    super._transform(chunk, encoding, (err) => this.settle(err, callback));
  }
  _flush(callback) {
    super._flush((err) => this.settle(err, callback));
  }
  settle(err, callback) {
    if (err) {
      this.push(new CsvFailure(err));
      this.push(null);
    }
    callback();
  }
}
function countNewlines(record) {
  let n = 0;
  for (const f of record) {
    let i = f.indexOf("\n");
    while (i !== -1) {
      n++;
      i = f.indexOf("\n", i + 1);
    }
  }
  return n;
}
async function* readProductBatches(source, limits) {
  const recordChars = limits.maxRecordChars ?? Math.max(limits.maxCellChars * 3 + 1024, 4096);
  const scanner = new ByteScanner();
  const bytes = Readable.from(scannedBytes(source, scanner), { objectMode: true, highWaterMark: 4 });
  const parser = new InBandErrorParser({
    bom: true,
    relax_column_count: true,
    // field counts are checked here, with a better message
    skip_empty_lines: false,
    // blank lines come through as [""] so that line numbers stay exact
    max_record_size: recordChars
  });
  pipeline(bytes, parser, () => {
  });
  const schemas = buildRowSchemas(limits);
  let header = null;
  let nextLine = 1;
  let rows = 0;
  let products = 0;
  let urls = 0;
  const serials = /* @__PURE__ */ new Map();
  const grouped = /* @__PURE__ */ new Map();
  let batch = [];
  const byteProblem = (p) => new AppError(400, `line ${p.line}, ${columnLabel(p.recordLine > (header?.line ?? Infinity) ? header : null, p.field)}: ${p.reason}`);
  try {
    try {
      for await (const rec of parser) {
        if (rec instanceof CsvFailure) throw rec.error;
        const line = nextLine;
        nextLine += 1 + countNewlines(rec);
        if (scanner.problem && line >= scanner.problem.recordLine) throw byteProblem(scanner.problem);
        if (rec.every((f) => f.trim() === "")) continue;
        if (!header) {
          header = readHeader(rec, line);
          continue;
        }
        rows++;
        if (rows > limits.maxRows) {
          throw new AppError(400, `line ${line}: too many rows: the limit is ${limits.maxRows} data rows per file`);
        }
        if (rec.length !== header.labels.length) {
          if (rec.length > header.labels.length) {
            throw new AppError(
              400,
              `line ${line}, column ${header.labels.length + 1} (after the last ${columnLabel(header, header.labels.length - 1)}): the row has ${rec.length} cells but the header has ${header.labels.length}; an unquoted comma shifts the columns, so quote cells that contain commas, e.g. "http://a/1.jpg,http://a/2.jpg"`
            );
          }
          throw new AppError(400, `line ${line}, ${columnLabel(header, rec.length)}: missing; the row has ${rec.length} cells but the header has ${header.labels.length}`);
        }
        const idx = header.index;
        const input = { serial: rec[idx.serial ?? -1], name: rec[idx.name], urls: rec[idx.urls] };
        const parsed = header.format === "seed" ? schemas.seed.safeParse(input) : schemas.simple.safeParse(input);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          const key = issue.path[0];
          throw new AppError(400, `line ${line}, ${columnLabel(header, idx[key] ?? 0)}: ${issue.message}`);
        }
        const value = parsed.data;
        if (header.format === "seed") {
          const serial = value.serial;
          const seenAt = serials.get(serial);
          if (seenAt !== void 0) {
            throw new AppError(400, `line ${line}, ${columnLabel(header, idx.serial)}: serial number ${serial} is already used on line ${seenAt}`);
          }
          serials.set(serial, line);
          if (value.urls.length > limits.maxUrlsPerProduct) {
            throw new AppError(400, `line ${line}, ${columnLabel(header, idx.urls)}: ${value.urls.length} image URLs; the limit is ${limits.maxUrlsPerProduct} per product`);
          }
          batch.push({ serial, name: value.name, inputUrls: value.urls });
          products++;
          urls += value.urls.length;
          if (batch.length >= limits.batchSize) {
            const out = batch;
            batch = [];
            yield out;
          }
        } else {
          let group = grouped.get(value.name);
          if (!group) {
            group = { firstLine: line, urls: /* @__PURE__ */ new Set() };
            grouped.set(value.name, group);
          }
          for (const u of value.urls) group.urls.add(u);
          if (group.urls.size > limits.maxUrlsPerProduct) {
            throw new AppError(
              400,
              `line ${line}, ${columnLabel(header, idx.urls)}: product ${quote(value.name)} (first on line ${group.firstLine}) has more than ${limits.maxUrlsPerProduct} image URLs`
            );
          }
        }
      }
    } catch (err) {
      if (scanner.problem && !(err instanceof AppError)) throw byteProblem(scanner.problem);
      if (isCsvError(err)) throw new AppError(400, csvErrorDetail(err, nextLine, header, { recordChars }));
      throw err;
    }
    if (scanner.problem) throw byteProblem(scanner.problem);
    if (!header) {
      throw new AppError(400, `line 1: the file is empty; expected a header row: ${EXPECTED_HEADERS}`);
    }
    if (rows === 0) {
      throw new AppError(400, `line ${header.line + 1}: no data rows; the file has only a header`);
    }
    if (header.format === "simple") {
      let serial = 0;
      for (const [name, group] of grouped) {
        const list = [...group.urls];
        batch.push({ serial: ++serial, name, inputUrls: list });
        urls += list.length;
        if (batch.length >= limits.batchSize) {
          const out = batch;
          batch = [];
          yield out;
        }
      }
      products = serial;
      grouped.clear();
    }
    if (batch.length > 0) yield batch;
    return { format: header.format, rows, products, urls };
  } finally {
    parser.destroy();
    bytes.destroy();
  }
}
export {
  csvLimitsFromConfig,
  normalizeHeader,
  readProductBatches,
  urlProblem
};
//# sourceMappingURL=csv-rows.js.map
