// Paging cursors are opaque to clients: base64url of a JSON array of sort keys.
export function encodeCursor(keys: Array<string | number>): string {
  return Buffer.from(JSON.stringify(keys)).toString('base64url');
}

/** Returns the keys, or [] for a cursor that was not made by encodeCursor. */
export function decodeCursor(cursor: string): Array<string | number> {
  try {
    const keys: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return Array.isArray(keys) && keys.every((k) => typeof k === 'string' || typeof k === 'number') ? keys : [];
  } catch {
    return [];
  }
}
