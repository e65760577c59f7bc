// Command-line options of the benchmark: --quick, --corpus DIR, --out FILE, --only a,b
import { resolve } from 'node:path';

export const SECTIONS = ['codec', 'quality', 'avif', 'pool', 'e2e', 'reimport', 'ingest', 'api', 'streams', 'store', 'large', 'mp12', 'convert', 'auto'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchArgs {
  quick: boolean;
  corpus: string;
  out: string;
  only: Set<Section>;
  /** worker threads for the pool / service; default: cores */
  threads: number | null;
  /** when set: child servers run with --cpu-prof and a memory probe, output under this dir */
  profile: string | null;
}

export function parseArgs(argv: string[], defaults: { corpus: string; out: string }): BenchArgs {
  const args: BenchArgs = { quick: false, corpus: defaults.corpus, out: defaults.out, only: new Set(SECTIONS), threads: null, profile: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--corpus')) args.corpus = resolve(value());
    else if (a.startsWith('--out')) args.out = resolve(value());
    else if (a.startsWith('--threads')) args.threads = Number(value());
    else if (a.startsWith('--profile')) args.profile = resolve(value());
    else if (a.startsWith('--only')) {
      const names = value().split(',').map((s) => s.trim());
      for (const n of names) if (!(SECTIONS as readonly string[]).includes(n)) throw new Error(`--only: unknown section ${n} (${SECTIONS.join(', ')})`);
      args.only = new Set(names as Section[]);
    } else if (a === '--help' || a === '-h') {
      console.log(`usage: node dist/bench/run.js [--quick] [--corpus DIR] [--out FILE] [--only ${SECTIONS.join(',')}] [--threads N] [--profile DIR]`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return args;
}
