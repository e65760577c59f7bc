import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { access, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { BLOB_KEY, contentTypeOf } from "./types.js";
class LocalStorage {
  constructor(root) {
    this.root = root;
  }
  root;
  kind = "local";
  #path(key) {
    if (!BLOB_KEY.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    return join(this.root, key.slice(0, 2), key);
  }
  async put(key, bytes) {
    const path = this.#path(key);
    if (await access(path).then(() => true, () => false)) return;
    await mkdir(join(this.root, key.slice(0, 2)), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, bytes, { flush: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
  async get(key) {
    if (!BLOB_KEY.test(key)) return null;
    const path = this.#path(key);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) return null;
    return {
      body: Readable.toWeb(createReadStream(path)),
      size: info.size,
      contentType: contentTypeOf(key)
    };
  }
  async check() {
    await mkdir(this.root, { recursive: true });
    await access(this.root);
  }
}
export {
  LocalStorage
};
//# sourceMappingURL=local.js.map
