// Every image the pixel limit admits is processed at the default memory budget: an 8000x6000 PNG
// with alpha (48 MP) does not fit the usual PNG path (OxiPNG, ~26 B/px) in MAX_DECODE_MEMORY_MB's
// default, so the pool reserves for the lean PNG encoder instead; that encoder's output is a valid
// PNG of the same pixels. The full-size run is in bench (`npm run bench -- --only large`).
import { describe, expect, it } from 'vitest';
import { pngChunk } from '../src/codecs/png.js';
import { be32, concat } from '../src/codecs/bytes.js';
import { DEFAULT_OUTPUT_OPTIONS } from '../src/codecs/output-options.js';
import { planImage } from '../src/codecs/plan.js';
import { loadConfig } from '../src/config.js';
import { reservationFor } from '../src/pipeline/pool.js';
import { encodePngLean } from '../workers/codecs/png-lean.js';
import { independentDecode } from './helpers/decode.js';

const MB = 1024 * 1024;

/** A PNG header declaring width x height RGBA (enough for planning, which reads the header only). */
const pngHeader = (width: number, height: number) =>
  concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', concat([be32(width), be32(height), new Uint8Array([8, 6, 0, 0, 0])]))]);

describe('large PNGs at the default budget', () => {
  const config = loadConfig({ DATA_DIR: '/tmp/unused' });
  const capacity = config.MAX_DECODE_MEMORY_MB * MB;

  it('an 8000x6000 PNG: the usual path does not fit, the lean one does and is chosen', () => {
    const plan = planImage(pngHeader(8000, 6000), DEFAULT_OUTPUT_OPTIONS, config.MAX_IMAGE_PIXELS);
    expect(plan.memoryBytes).toBeGreaterThan(capacity);
    expect(plan.memoryLeanBytes).not.toBeNull();
    expect(plan.memoryLeanBytes!).toBeLessThanOrEqual(capacity);
    expect(reservationFor(plan, capacity, config.WORKER_THREADS)).toEqual({ bytes: plan.memoryLeanBytes, keepInstances: false, lean: true });
  });

  it('a PNG that fits the usual path keeps it', () => {
    const plan = planImage(pngHeader(2000, 1500), DEFAULT_OUTPUT_OPTIONS, config.MAX_IMAGE_PIXELS);
    expect(reservationFor(plan, capacity, config.WORKER_THREADS).lean).toBe(false);
  });

  it('the lean encoder writes the same pixels as a valid PNG', async () => {
    const width = 301;
    const height = 203;
    const data = new Uint8ClampedArray(width * height * 4);
    for (let i = 0; i < width * height; i++) data.set([(i * 7) & 255, (i >> 3) & 255, (i * 13) & 255, (i * 5) & 255], i * 4);
    const png = await encodePngLean({ data, width, height });
    const img = await independentDecode(png);
    expect([img.width, img.height]).toEqual([width, height]);
    expect(Buffer.from(img.data).equals(Buffer.from(data))).toBe(true);
  });
});
