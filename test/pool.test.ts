// The compress stage through the real Piscina pool and the real WASM codecs (the built worker,
// dist/workers/compress.js: run `npm run build` first). Every output is decoded again with the
// stock @jsquash decoders and its dimensions checked.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFormat, jpegHasExif } from '../src/codecs/sniff.js';
import { CompressPool, MemoryBudget, reservationFor } from '../src/pipeline/pool.js';
import { resolveWorkerFile } from '../src/runtime/worker-file.js';
import { RetainedMemory } from '../src/pipeline/retained-memory.js';
import { planImage } from '../src/codecs/plan.js';
import { DEFAULT_OUTPUT_OPTIONS } from '../src/codecs/output-options.js';
import { fixture, independentDecode, type Pixels } from './helpers/decode.js';
import { until } from './helpers/poll.js';

const decode = independentDecode;

/** Mean absolute difference of the RGB channels on a 1-in-3 pixel grid. */
function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  let n = 0;
  for (let y = 0; y < a.height; y += 3) {
    for (let x = 0; x < a.width; x += 3) {
      const i = (y * a.width + x) * 4;
      for (let c = 0; c < 3; c++) sum += Math.abs(a.data[i + c]! - b.data[i + c]!);
      n += 3;
    }
  }
  return sum / n;
}

/** Rotates pixels 180 degrees (the wrong answer for a 90-degree orientation, same size). */
function rotate180(p: Pixels): Pixels {
  const out = new Uint8ClampedArray(p.data.length);
  const n = p.width * p.height;
  for (let i = 0; i < n; i++) out.set(p.data.subarray(i * 4, i * 4 + 4), (n - 1 - i) * 4);
  return { data: out, width: p.width, height: p.height };
}

/** The DQT values of a JPEG in file (zigzag) order, by table id. */
function dqt(b: Uint8Array): Map<number, number[]> {
  const out = new Map<number, number[]>();
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff && b[i + 1] !== 0xda) {
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (b[i + 1] === 0xdb) {
      let p = i + 4;
      while (p < i + 2 + len) {
        const wide = b[p]! >> 4;
        const id = b[p]! & 15;
        p++;
        const values: number[] = [];
        for (let k = 0; k < 64; k++) values.push(wide ? (b[p + 2 * k]! << 8) | b[p + 2 * k + 1]! : b[p + k]!);
        p += wide ? 128 : 64;
        out.set(id, values);
      }
    }
    i += 2 + len;
  }
  return out;
}

/** A PNG that declares width x height in a valid IHDR (CRC included) with almost no pixel data. */
function pngDeclaring(width: number, height: number): Uint8Array {
  const crc = (bytes: Uint8Array) => {
    let c = ~0;
    for (const byte of bytes) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: number[]) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), Buffer.from(data)]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', [...ihdr]), chunk('IDAT', [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), chunk('IEND', [])]));
}

const dir = mkdtempSync(join(tmpdir(), 'pool-test-'));
const runLog = join(dir, 'codec-runs.log');
const codecRuns = () => {
  try {
    return readFileSync(runLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

let pool: CompressPool;

beforeAll(async () => {
  pool = new CompressPool({ threads: 2, maxPixels: 50_000_000, codecRunLog: runLog });
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CompressPool on the corpus', () => {
  it('finds the built worker when running TypeScript sources on Node', () => {
    expect(resolveWorkerFile('compress')).toMatch(/dist[\\/]workers[\\/]compress\.js$/);
    expect(resolveWorkerFile('download')).toMatch(/dist[\\/]workers[\\/]download\.js$/);
  });

  it.each([
    ['rocket-small.jpg', 'jpeg', 640, 427],
    ['Kite.webp', 'webp', 1500, 937],
    ['chelsea.png', 'png', 451, 300],
    ['astronaut-alpha.png', 'png', 512, 512],
  ] as const)('%s comes back as a smaller, decodable %s of the same size', async (name, format, width, height) => {
    const src = fixture(name);
    const r = await pool.compress(src);
    expect(r).toMatchObject({ format, width, height, bytesIn: src.length, bytesOut: r.bytes.length, outcome: 'compressed' });
    expect(detectFormat(r.bytes)).toBe(format);
    expect(r.bytes.length).toBeLessThan(src.length);
    const img = await decode(r.bytes);
    expect([img.width, img.height]).toEqual([width, height]);
    if (format === 'jpeg') expect(jpegHasExif(r.bytes)).toBe(false);
    if (name === 'astronaut-alpha.png') {
      // alpha kept: the transparent corner stays transparent, the opaque centre opaque
      expect(img.data[3]).toBe(0);
      expect(img.data[(256 * 512 + 256) * 4 + 3]).toBe(255);
    }
  });

  it('leaves the caller\'s input intact (the pool copies it into the task)', async () => {
    const src = fixture('rocket-small.jpg');
    const copy = src.slice();
    await pool.compress(src);
    expect(src.byteLength).toBe(copy.byteLength);
    expect(Buffer.from(src).equals(Buffer.from(copy))).toBe(true);
  });

  it('applies EXIF orientation 6 to the pixels and writes no EXIF', async () => {
    const src = fixture('coffee-orient6.jpg');
    const r = await pool.compress(src);
    expect([r.width, r.height]).toEqual([400, 600]); // stored 600x400, displayed rotated
    expect(jpegHasExif(r.bytes)).toBe(false);
    expect(r.bytes.length).toBeLessThan(src.length);
    const out = await decode(r.bytes);
    // reference: libjpeg-turbo's own orientation handling in the stock decoder
    const upright = await decode(src, { preserveOrientation: true });
    expect([upright.width, upright.height]).toEqual([400, 600]);
    const right = meanDiff(out, upright);
    const wrong = meanDiff(out, rotate180(upright)); // rotated the other way round
    expect(right).toBeLessThan(8);
    expect(wrong).toBeGreaterThan(right * 3);
  });

  it('encodes JPEG at quality 50: the output DQT tables are the ones the encoder writes at q50', async () => {
    const r = await pool.compress(fixture('rocket-small.jpg'));
    const tables = dqt(r.bytes);
    expect([...tables.keys()].sort()).toEqual([0, 1]);
    // MozJPEG table 3 at scale 100% (quality 50), clamped to 8 bits, in zigzag order: its first
    // row (16 16 16 18 ...), derived from the base table in codecs.test.ts; here the spot values
    // that differ between q49, q50 and q51 (scale 102 / 100 / 98 of 16 -> 16, 16, 16; of 418).
    // Expected: MozJPEG's base table 3 (its default, "ImageMagick table by N. Robidoux" in
    // jcparam.c; same values for luma and chroma) through libjpeg's quality scaling
    // (q < 50 ? 5000/q : 200 - 2q percent, rounded) clamped to 8 bits (baseline), in zigzag order.
    // codecs.test.ts checks the same derivation at q50 and q75 on the encoder directly.
    const base = [
      16, 16, 16, 18, 25, 37, 56, 85, 16, 17, 20, 27, 34, 40, 53, 75, 16, 20, 24, 31, 43, 62, 91, 135,
      18, 27, 31, 40, 53, 74, 106, 156, 25, 34, 43, 53, 69, 94, 131, 189, 37, 40, 62, 74, 94, 124, 169, 238,
      56, 53, 91, 106, 131, 169, 226, 311, 85, 75, 135, 156, 189, 238, 311, 418,
    ];
    const zigzag = [
      0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
      35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];
    const atQuality = (q: number) => {
      const scale = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
      return zigzag.map((n) => Math.min(255, Math.max(1, Math.floor((base[n]! * scale + 50) / 100))));
    };
    const luma = tables.get(0)!;
    expect(luma).toEqual(atQuality(50));
    expect(luma).not.toEqual(atQuality(49));
    expect(luma).not.toEqual(atQuality(51));
    expect(tables.get(1)).toEqual(luma); // MozJPEG's table 3 uses the same values for chroma
  });
});

describe('refusals cost only that image', () => {
  const stillWorks = async () => {
    const r = await pool.compress(fixture('rocket-small.jpg'));
    expect((await decode(r.bytes)).width).toBe(640);
  };

  it('refuses a PNG declaring 30000x30000 before decoding it', async () => {
    const before = codecRuns().length;
    await expect(pool.compress(pngDeclaring(30000, 30000))).rejects.toThrow(/too large: 30000x30000 \(900000000 pixels\)/);
    // no decoder ran: the codec-run log (written right before decoding) did not grow
    expect(codecRuns().length).toBe(before);
    await stillWorks();
  });

  it('refuses HTML as an unsupported format', async () => {
    await expect(pool.compress(new TextEncoder().encode('<!doctype html><html><body>nope</body></html>'))).rejects.toThrow('not an image: an HTML page arrived');
    await stillWorks();
  });

  it('refuses a truncated JPEG with a clean error', async () => {
    const src = fixture('rocket-small.jpg');
    await expect(pool.compress(src.subarray(0, src.length >> 1))).rejects.toThrow(/JPEG decode failed: truncated/);
    await stillWorks();
  });

  it('refuses garbage behind a valid signature', async () => {
    const bytes = new Uint8Array(4096);
    bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await expect(pool.compress(bytes)).rejects.toThrow(/PNG decode failed/);
    await stillWorks();
  });

  it('counts one codec run per image that reached a decoder', async () => {
    const before = codecRuns().length;
    const settled = await Promise.allSettled([pool.compress(fixture('rocket-small.jpg')), pool.compress(fixture('Kite.webp')), pool.compress(new TextEncoder().encode('html'))]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const lines = codecRuns().slice(before);
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => l.split(' ')[2]).sort()).toEqual(['jpeg', 'webp']);
    for (const l of lines) expect(l).toMatch(/^\d+ \d+ (jpeg|webp) \d+$/);
  });
});

describe('a worker that dies costs only its image', () => {
  it('an abort terminates the running worker; Piscina replaces it and the pool keeps serving', async () => {
    const log = join(dir, 'abort-runs.log');
    const single = new CompressPool({ threads: 1, maxPixels: 50_000_000, codecRunLog: log });
    try {
      await single.compress(fixture('rocket-small.jpg'));
      const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const firstThread = lines()[0]!.split(' ')[1];
      const controller = new AbortController();
      const doomed = single.compress(fixture('astronaut-alpha.png'), controller.signal);
      // wait until the worker has started on it (its codec-run line is written before decoding)
      await until(() => lines().length >= 2, 'the codec-run line', { intervalMs: 5 });
      controller.abort();
      await expect(doomed).rejects.toThrow(/abort/i);
      const r = await single.compress(fixture('rocket-small.jpg'));
      expect((await decode(r.bytes)).width).toBe(640);
      const lastThread = lines().at(-1)!.split(' ')[1];
      expect(lastThread).not.toBe(firstThread); // a new thread did the work: the old one was ended
      expect(single.stats()).toMatchObject({ threads: 1, completed: 2, failed: 1 });
    } finally {
      await single.close();
    }
  });
});

describe('bounded queue', () => {
  it('waitForCapacity holds callers while threads + maxQueue tasks are in flight', async () => {
    const small = new CompressPool({ threads: 1, maxQueue: 1, maxPixels: 50_000_000 });
    try {
      const a = small.compress(fixture('chelsea.png'));
      const b = small.compress(fixture('rocket-small.jpg'));
      const s = small.stats();
      expect(s.running + s.queued).toBe(2);
      // resolves only once a task has finished: record how many had when it did
      let finishedWhenFree = -1;
      const capacity = small.waitForCapacity().then(() => {
        finishedWhenFree = small.stats().completed;
      });
      // a third compress waits for a slot instead of failing
      const c = small.compress(fixture('Kite.webp'));
      expect(small.stats().queued).toBeGreaterThanOrEqual(1);
      await Promise.all([a, b, capacity, c]);
      expect(finishedWhenFree).toBeGreaterThanOrEqual(1);
      expect(small.stats()).toMatchObject({ threads: 1, running: 0, queued: 0, completed: 3, failed: 0 });
    } finally {
      await small.close();
    }
    await expect(small.compress(fixture('rocket-small.jpg'))).rejects.toThrow(/closed/);
  });
});

describe('a hostile image cannot hold a thread', () => {
  /**
   * A 4000x4000 greyscale progressive JPEG, arithmetic-coded, made of nothing but DC scans with no
   * data: libjpeg's arithmetic decoder reads a marker where data should be as zeros (as the
   * standard says), so each scan walks every block, and the repeats only draw a warning.
   */
  function manyScansJpeg(scans: number): Uint8Array {
    const dqt = [0xff, 0xdb, 0x00, 0x43, 0x00, ...Array<number>(64).fill(1)];
    // SOF10: 8-bit, 4000x4000, one component (id 1, 1x1 sampling, table 0)
    const sof = [0xff, 0xca, 0x00, 0x0b, 0x08, 0x0f, 0xa0, 0x0f, 0xa0, 0x01, 0x01, 0x11, 0x00];
    // SOS: component 1, DC only (Ss = Se = 0), first pass (Ah = Al = 0), no entropy data after it
    const scan = [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00];
    return new Uint8Array([0xff, 0xd8, ...dqt, ...sof, ...Array<number[]>(scans).fill(scan).flat(), 0xff, 0xd9]);
  }

  it('ends a task that runs past taskTimeoutMs; the wait in the queue does not count', async () => {
    const hostile = manyScansJpeg(3000); // many seconds of decoding (300 scans took 4.8 s here)
    const single = new CompressPool({ threads: 1, maxPixels: 50_000_000, taskTimeoutMs: 1500 });
    try {
      await single.ready();
      const t0 = performance.now();
      const doomed = single.compress(hostile);
      const queued = single.compress(fixture('rocket-small.jpg')); // waits behind it for ~1.5 s
      await expect(doomed).rejects.toThrow(/took longer than 1500 ms/);
      expect(performance.now() - t0).toBeLessThan(6000);
      expect((await decode((await queued).bytes)).width).toBe(640);
    } finally {
      await single.close();
    }
  }, 30_000);
});

/** A photo-like JPEG (gradients + noise) of the given size, made with sharp. */
async function photoJpeg(width: number, height: number, quality = 90): Promise<Uint8Array> {
  const { default: sharp } = await import('sharp');
  const raw = Buffer.alloc(width * height * 3);
  let seed = 3;
  for (let i = 0, p = 0; p < width * height; p++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const n = (seed >>> 27) - 16;
    const x = p % width;
    const y = (p / width) | 0;
    raw[i++] = (x * 255) / width + n;
    raw[i++] = (y * 255) / height + n;
    raw[i++] = 128 + n;
  }
  return new Uint8Array(await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer());
}

const tick = () => new Promise((r) => setImmediate(r));

describe('memory budget (MemoryBudget, FIFO weighted semaphore)', () => {
  it('admits what fits, keeps order, lets small work run beside a giant and never lets anything overtake a waiting giant', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const take = (name: string, bytes: number) => budget.acquire(bytes).then(() => order.push(name));
    const a = take('giantA', 70);
    const s1 = take('small1', 20); // fits beside A
    const b = take('giantB', 70); // must wait for A
    const s2 = take('small2', 5); // fits, but B is first in line: FIFO, no overtaking
    await tick();
    expect(order).toEqual(['giantA', 'small1']);
    expect([budget.inUse, budget.waiting]).toEqual([90, 2]);
    budget.release(20); // small1 done: B still does not fit beside A
    await tick();
    expect(order).toEqual(['giantA', 'small1']);
    budget.release(70); // A done: B, then small2 beside it
    await Promise.all([a, s1, b, s2]);
    expect(order).toEqual(['giantA', 'small1', 'giantB', 'small2']);
    expect(budget.inUse).toBe(75);
  });

  it('an aborted waiter leaves the line and the next one gets its turn', async () => {
    const budget = new MemoryBudget(100);
    await budget.acquire(60);
    const ctl = new AbortController();
    const big = budget.acquire(80, ctl.signal);
    const small = budget.acquire(30);
    ctl.abort(new Error('gone'));
    await expect(big).rejects.toThrow('gone');
    await small; // no longer behind the giant
    expect([budget.inUse, budget.waiting]).toEqual([90, 0]);
    await expect(budget.acquire(101)).rejects.toThrow(/larger than the whole budget/);
  });
});

describe('memory held outside the reservations (what idle threads keep)', () => {
  it('the budget counts it, says when the first in line is blocked, and grants once it shrinks', async () => {
    let outside = 60;
    let blocked = 0;
    const budget = new MemoryBudget(100, () => outside, () => blocked++);
    const order: string[] = [];
    void budget.acquire(30).then(() => order.push('a'));
    void budget.acquire(30).then(() => order.push('b')); // 30 + 60 + 30 > 100
    await tick();
    expect(order).toEqual(['a']);
    expect(blocked).toBeGreaterThan(0);
    expect(budget.granted).toBe(1);
    outside = 0;
    budget.drain();
    await tick();
    expect(order).toEqual(['a', 'b']);
    expect([budget.inUse, budget.granted]).toEqual([60, 2]);
  });

  it('RetainedMemory: one slot per thread, summed; a thread that ended is forgotten', () => {
    const pool = new RetainedMemory(2);
    const thread = new RetainedMemory(pool.buffer); // the same memory, as a pool thread sees it
    expect(thread.set(7, 100 * 1024)).toBe(true);
    expect(thread.set(9, 50 * 1024)).toBe(true);
    expect(thread.set(11, 0)).toBe(true); // clearing needs no slot
    expect(thread.set(11, 1024)).toBe(false); // no slot free: this thread may not keep anything
    expect(pool.summary()).toEqual({ total: 150 * 1024, holders: 2, smallest: 50 * 1024 });
    thread.set(7, 0);
    expect(pool.summary()).toEqual({ total: 50 * 1024, holders: 1, smallest: 50 * 1024 });
    pool.forget(9);
    expect(pool.summary()).toEqual({ total: 0, holders: 0, smallest: 0 });
    expect(thread.set(11, 1024)).toBe(true); // the freed slot is taken
  });
});

describe('memory budget in the pool', () => {
  it('refuses an image that alone needs more than MAX_DECODE_MEMORY_MB before decoding it', async () => {
    const log = join(dir, 'budget-runs.log');
    const small = new CompressPool({ threads: 1, maxPixels: 50_000_000, maxDecodeMemoryMb: 256, codecRunLog: log });
    try {
      await expect(small.compress(pngDeclaring(8000, 6000))).rejects.toThrow(/image refused: 8000x6000 needs about \d+ MB to process, more than MAX_DECODE_MEMORY_MB=256/);
      expect(() => readFileSync(log)).toThrow(); // no codec ran: the run log was never written
      const r = await small.compress(fixture('rocket-small.jpg'));
      expect((await decode(r.bytes)).width).toBe(640);
      expect(small.stats()).toMatchObject({ failed: 1, completed: 1, memoryInUse: 0, memoryWaiting: 0 });
    } finally {
      await small.close();
    }
  });

  it('two images that do not fit together run one after the other while a small one runs beside the first', async () => {
    const big = await photoJpeg(2000, 1500);
    const bigPlan = planImage(big, DEFAULT_OUTPUT_OPTIONS, 50_000_000);
    const smallPlan = planImage(fixture('rocket-small.jpg'), DEFAULT_OUTPUT_OPTIONS, 50_000_000);
    // room for one big image and one small one, never for two big ones
    const budgetMb = Math.ceil((bigPlan.memoryBytes + smallPlan.memoryKeepingBytes) / 2 ** 20) + 1;
    const cost = reservationFor(bigPlan, budgetMb * 2 ** 20, 2).bytes;
    const smallCost = reservationFor(smallPlan, budgetMb * 2 ** 20, 2).bytes;
    expect(cost).toBe(bigPlan.memoryBytes); // too big to keep its instances in half the budget
    expect(2 * cost).toBeGreaterThan(budgetMb * 2 ** 20);
    const two = new CompressPool({ threads: 2, maxPixels: 50_000_000, maxDecodeMemoryMb: budgetMb });
    try {
      const first = two.compress(big);
      const small = two.compress(fixture('rocket-small.jpg'));
      const second = two.compress(big);
      await tick();
      await tick();
      const s = two.stats();
      expect(s.memoryInUse).toBe(cost + smallCost); // the first big one and the small one admitted
      expect(s.memoryWaiting).toBe(1); // the second big one waits for room
      const outs = await Promise.all([first, small, second]);
      for (const o of outs) expect((await decode(o.bytes)).width).toBe(o.width);
      expect(outs.map((o) => [o.width, o.height])).toEqual([[2000, 1500], [640, 427], [2000, 1500]]);
      expect(two.stats()).toMatchObject({ memoryInUse: 0, memoryWaiting: 0, completed: 3 });
    } finally {
      await two.close();
    }
  });

  const MiB = 2 ** 20;

  it('drops the codec instances a large image grew when the budget cannot hold them kept, so the next image gets fresh ones', async () => {
    const big = await photoJpeg(3000, 2000); // 6 MP: MozJPEG's encoder grows to ~36 MiB
    const plan = planImage(big, DEFAULT_OUTPUT_OPTIONS, 50_000_000);
    const budgetMb = Math.ceil(plan.memoryBytes / MiB) + 1; // room for its largest step, not for all at once
    expect(reservationFor(plan, budgetMb * MiB, 1).keepInstances).toBe(false);
    const single = new CompressPool({ threads: 1, maxPixels: 50_000_000, maxDecodeMemoryMb: budgetMb });
    try {
      await single.compress(fixture('rocket-small.jpg'));
      await single.compress(fixture('rocket-small.jpg'));
      const before = await single.threadStats();
      // small images reuse the instances: one made each
      expect(before.made).toMatchObject({ libjpeg: 1, 'jpeg-enc': 1 });
      expect(before.live.libjpeg).toBeGreaterThan(0);
      const r = await single.compress(big);
      expect((await decode(r.bytes)).width).toBe(3000);
      const after = await single.threadStats();
      expect(after.threadId).toBe(before.threadId);
      expect(after.live['jpeg-enc']).toBeUndefined(); // dropped
      for (const bytes of Object.values(after.live)) expect(bytes).toBeLessThanOrEqual(32 * MiB); // what is kept is small
      expect(single.stats().memoryRetained).toBe(0);
      await single.compress(fixture('rocket-small.jpg'));
      const again = await single.threadStats();
      expect(again.made['jpeg-enc']).toBe(2); // instantiated afresh
      expect(again.live['jpeg-enc']).toBeLessThanOrEqual(32 * MiB);
    } finally {
      await single.close();
    }
  });

  it('keeps them for the next image when the budget holds them, counts them, and lets go once the pool is idle', async () => {
    const big = await photoJpeg(3000, 2000);
    expect(reservationFor(planImage(big, DEFAULT_OUTPUT_OPTIONS, 50_000_000), 1024 * MiB, 1).keepInstances).toBe(true);
    // The idle release must not fire between the two images: on a loaded 2-core machine the
    // stats round trip between them took over 300 ms, so the window is generous (the final
    // wait for the release is the only one that sits it out).
    const single = new CompressPool({ threads: 1, maxPixels: 50_000_000, releaseIdleMs: 3000 });
    try {
      const first = await single.compress(big);
      const kept = single.stats().memoryRetained;
      const stats = await single.threadStats();
      expect(stats.live['jpeg-enc']).toBeGreaterThan(32 * MiB); // kept, grown
      expect(kept).toBeGreaterThanOrEqual(stats.live['jpeg-enc']!); // and counted in the budget
      const second = await single.compress(big);
      expect(second.bytes).toEqual(first.bytes); // same output from the reused instances
      expect((await single.threadStats()).made['jpeg-enc']).toBe(stats.made['jpeg-enc']); // none made afresh
      expect((await decode(first.bytes)).width).toBe(3000);
      await until(() => single.stats().memoryRetained === 0, 'the idle pool to release what it kept');
      const idle = await single.threadStats();
      expect(idle.live['jpeg-enc']).toBeUndefined();
      for (const bytes of Object.values(idle.live)) expect(bytes).toBeLessThanOrEqual(32 * MiB);
    } finally {
      await single.close();
    }
  });

  it('an image over 16 MP lets go of every instance after its step, even where the budget would keep them', async () => {
    const huge = await photoJpeg(5000, 3400); // 17 MP
    const options = { ...DEFAULT_OUTPUT_OPTIONS, max_width: 1600 };
    expect(reservationFor(planImage(huge, options, 50_000_000), 1024 * MiB, 1).keepInstances).toBe(true);
    const single = new CompressPool({ threads: 1, maxPixels: 50_000_000, releaseIdleMs: 60_000 });
    try {
      await single.compress(fixture('rocket-small.jpg'));
      expect((await single.threadStats()).live.libjpeg).toBeGreaterThan(0); // a small image's are kept
      const r = await single.compress(huge, { options });
      const out = await decode(r.bytes);
      expect([out.width, out.height]).toEqual([1600, 1088]);
      expect((await single.threadStats()).live).toEqual({}); // decoder, resizer and encoder let go
      expect(single.stats().memoryRetained).toBe(0);
      // and the next image is served by fresh instances
      const again = await single.compress(fixture('rocket-small.jpg'));
      expect((await decode(again.bytes)).width).toBeGreaterThan(0);
    } finally {
      await single.close();
    }
  });

  it('an image that needs the room an idle thread keeps gets it: the thread lets go', async () => {
    const big = await photoJpeg(3000, 2000);
    const bigPlan = planImage(big, DEFAULT_OUTPUT_OPTIONS, 50_000_000);
    // (22 MP: with the encoder's 6 B/px the kept instances are ~44 MiB, so the giant's need must
    // come within that of the budget for it not to fit beside them)
    const giant = await photoJpeg(5700, 3800);
    const giantPlan = planImage(giant, DEFAULT_OUTPUT_OPTIONS, 50_000_000);
    // two threads; the 6 MP image keeps its instances (half the budget holds them); the 22 MP one
    // then fits only if that thread lets them go
    const budgetMb = Math.ceil((2 * bigPlan.memoryKeepingBytes) / MiB);
    const budget = budgetMb * MiB;
    expect(reservationFor(bigPlan, budget, 2).keepInstances).toBe(true);
    const giantNeed = reservationFor(giantPlan, budget, 2).bytes;
    expect(giantNeed).toBeLessThanOrEqual(budget);
    const two = new CompressPool({ threads: 2, maxPixels: 50_000_000, maxDecodeMemoryMb: budgetMb, releaseIdleMs: 60_000 });
    try {
      await two.compress(big);
      const kept = two.stats().memoryRetained;
      expect(kept + giantNeed).toBeGreaterThan(budget); // the giant does not fit beside what is kept
      const r = await two.compress(giant);
      expect((await decode(r.bytes)).width).toBe(5700);
      expect(two.stats()).toMatchObject({ completed: 2, failed: 0, memoryInUse: 0 });
    } finally {
      await two.close();
    }
  });
});

describe('MAX_DECODE_MEMORY_MB', () => {
  it('defaults to 1024 and is validated like every setting', async () => {
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig({}).MAX_DECODE_MEMORY_MB).toBe(1024);
    expect(loadConfig({ MAX_DECODE_MEMORY_MB: '768' }).MAX_DECODE_MEMORY_MB).toBe(768);
    for (const bad of ['lots', '0', '12.5', '-1']) expect(() => loadConfig({ MAX_DECODE_MEMORY_MB: bad })).toThrow(/MAX_DECODE_MEMORY_MB/);
  });
});
