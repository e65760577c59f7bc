// SSIM of a lossy result against its source, cheap enough to decide a codec rule per image:
// 8x8 windows at a stride of 4 (each pixel seen four times, no buffers beyond the two images),
// uniform weights, the usual constants C1 = (0.01 L)^2 and C2 = (0.03 L)^2.
//
// Two planes are compared and the lower mean is returned: luma (BT.601) premultiplied by alpha,
// so colour errors count where a pixel is visible and not where it is transparent; and alpha
// itself, so a coarse transparency ramp counts too. For an opaque image the alpha plane scores 1.

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
const WINDOW = 8;
const STRIDE = 4;

type Pixels = Uint8Array | Uint8ClampedArray;

export function ssim(a: Pixels, b: Pixels, width: number, height: number): number {
  if (a.length !== width * height * 4 || b.length !== a.length) throw new Error('ssim: two RGBA images of the same size expected');
  const ww = Math.min(WINDOW, width);
  const wh = Math.min(WINDOW, height);
  const n = ww * wh;
  let sumY = 0;
  let sumA = 0;
  let windows = 0;
  const lastX = width - ww;
  const lastY = height - wh;
  for (let y0 = 0; ; y0 = Math.min(y0 + STRIDE, lastY)) {
    for (let x0 = 0; ; x0 = Math.min(x0 + STRIDE, lastX)) {
      let ya = 0, yb = 0, yaa = 0, ybb = 0, yab = 0;
      let aa = 0, ab = 0, aaa = 0, abb = 0, aab = 0;
      for (let y = y0; y < y0 + wh; y++) {
        let i = (y * width + x0) * 4;
        for (let x = 0; x < ww; x++, i += 4) {
          const alphaA = a[i + 3]!;
          const alphaB = b[i + 3]!;
          const la = ((0.299 * a[i]! + 0.587 * a[i + 1]! + 0.114 * a[i + 2]!) * alphaA) / 255;
          const lb = ((0.299 * b[i]! + 0.587 * b[i + 1]! + 0.114 * b[i + 2]!) * alphaB) / 255;
          ya += la; yb += lb; yaa += la * la; ybb += lb * lb; yab += la * lb;
          aa += alphaA; ab += alphaB; aaa += alphaA * alphaA; abb += alphaB * alphaB; aab += alphaA * alphaB;
        }
      }
      sumY += windowSsim(ya, yb, yaa, ybb, yab, n);
      sumA += windowSsim(aa, ab, aaa, abb, aab, n);
      windows++;
      if (x0 === lastX) break;
    }
    if (y0 === lastY) break;
  }
  return Math.min(sumY, sumA) / windows;
}

function windowSsim(sa: number, sb: number, saa: number, sbb: number, sab: number, n: number): number {
  const ma = sa / n;
  const mb = sb / n;
  const va = saa / n - ma * ma;
  const vb = sbb / n - mb * mb;
  const cov = sab / n - ma * mb;
  return ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
}
