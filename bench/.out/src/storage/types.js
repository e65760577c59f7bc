const CONTENT_TYPES = { jpg: "image/jpeg", png: "image/png", webp: "image/webp" };
const EXTENSIONS = { jpeg: "jpg", png: "png", webp: "webp" };
const BLOB_KEY = /^[0-9a-f]{64}\.(jpg|png|webp)$/;
function blobKey(sha256Hex, format) {
  const ext = EXTENSIONS[format];
  if (!ext) throw new Error(`no extension for format ${format}`);
  return `${sha256Hex}.${ext}`;
}
function contentTypeOf(key) {
  return CONTENT_TYPES[key.slice(key.lastIndexOf(".") + 1)] ?? "application/octet-stream";
}
export {
  BLOB_KEY,
  blobKey,
  contentTypeOf
};
//# sourceMappingURL=types.js.map
