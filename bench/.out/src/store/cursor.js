function encodeCursor(keys) {
  return Buffer.from(JSON.stringify(keys)).toString("base64url");
}
function decodeCursor(cursor) {
  try {
    const keys = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    return Array.isArray(keys) && keys.every((k) => typeof k === "string" || typeof k === "number") ? keys : [];
  } catch {
    return [];
  }
}
export {
  decodeCursor,
  encodeCursor
};
//# sourceMappingURL=cursor.js.map
