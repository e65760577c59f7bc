// The image formats by name, as plain data: no code and no imports, so the dashboard's bundle, the
// pool threads and the API schemas can all take them without pulling in the codec table. The
// codec table (table.ts) has exactly one row per name here; its type makes it so.

/** Formats the service reads and writes. */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;

export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Formats the service only reads: always converted, to one of the IMAGE_FORMATS. */
export const INPUT_ONLY_FORMATS = ['gif', 'tiff', 'bmp', 'heif'] as const;

export type InputOnlyFormat = (typeof INPUT_ONLY_FORMATS)[number];

export type InputFormat = ImageFormat | InputOnlyFormat;
