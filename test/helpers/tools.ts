// Command-line tools some tests make their images with (ImageMagick, jpegtran, avifenc): whether
// one is on this machine. A test without its tool says so and leaves its case out.
import { execFileSync } from 'node:child_process';

/** The tool runs and answers its version flag. */
export function hasTool(command: string, versionFlag = '-version'): boolean {
  try {
    execFileSync(command, [versionFlag], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
