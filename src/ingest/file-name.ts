// The name an upload's file is listed under: what the client called it, made safe to store and
// show. Browsers send a base name, but any client may send a path, control characters (a newline
// would forge a log line, a bidi override would disguise an extension) or a megabyte of text.

/** Longest stored name, in characters (most file systems stop at 255 bytes). */
export const MAX_FILE_NAME_CHARS = 255;

/** The base name, without control or bidi-format characters, trimmed and capped; null when nothing is left. */
export function cleanFileName(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const base = raw.split(/[/\\]/).pop() ?? '';
  const clean = base.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '').trim();
  if (clean === '') return null;
  const chars = Array.from(clean);
  return chars.length > MAX_FILE_NAME_CHARS ? chars.slice(0, MAX_FILE_NAME_CHARS).join('') : clean;
}
