// One unit convention for image sizes: decimal kB/MB, as the dashboard, the CLI and the docs show.
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../src/byte-size.js';

describe('formatBytes', () => {
  it('uses decimal units', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.0 kB');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(340_000)).toBe('340 kB');
    expect(formatBytes(999_999)).toBe('1.0 MB');
    expect(formatBytes(1_048_576)).toBe('1.0 MB');
    expect(formatBytes(12_400_000)).toBe('12 MB');
    expect(formatBytes(3_000_000_000)).toBe('3.0 GB');
  });
});
