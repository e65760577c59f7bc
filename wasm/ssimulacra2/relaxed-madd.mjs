// node relaxed-madd.mjs IN.wasm OUT.wasm SITES: clang 14 writes relaxed SIMD's fused multiply-add
// as the prototype's f32x4.fma (0xfd 0xaf 0x01); engines take only the standard encoding,
// f32x4.relaxed_madd (0xfd 0x85 0x02, same length). Rewrites every occurrence and refuses unless
// there are exactly SITES of them (the f32x4.fma instructions llvm-objdump counts in the object,
// passed by build.sh): a constant or another instruction holding those bytes would be rewritten
// too, and the count stops the build when that happens.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output, sites] = process.argv.slice(2);
const bytes = new Uint8Array(readFileSync(input));
let found = 0;
for (let i = 0; i + 2 < bytes.length; i++) {
  if (bytes[i] === 0xfd && bytes[i + 1] === 0xaf && bytes[i + 2] === 0x01) {
    bytes[i + 1] = 0x85;
    bytes[i + 2] = 0x02;
    found++;
    i += 2;
  }
}
if (String(found) !== sites) {
  console.error(`relaxed-madd: ${found} byte sequences 0xfd 0xaf 0x01 in ${input}, but ${sites} f32x4.fma instructions in the object`);
  process.exit(1);
}
writeFileSync(output, bytes);
