// The image formats by name, as plain data: no code and no imports, so the dashboard's bundle, the
// pool threads and the API schemas can all take them without pulling in the codec table. The
// codec table (table.ts) has exactly one row per name here; its type makes it so.
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;

export type ImageFormat = (typeof IMAGE_FORMATS)[number];
