import {
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException
} from "@aws-sdk/client-s3";
import { BLOB_KEY, contentTypeOf } from "./types.js";
const CACHE_CONTROL = "public, max-age=31536000, immutable";
class S3Storage {
  kind = "s3";
  #client;
  #bucket;
  constructor(opts) {
    this.#bucket = opts.bucket;
    this.#client = new S3Client({
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      ...opts.endpoint ? { endpoint: opts.endpoint } : {},
      ...opts.credentials ? { credentials: opts.credentials } : {}
    });
  }
  /** PutObject replaces the object atomically, and the same key always carries the same bytes. */
  async put(key, bytes, contentType) {
    if (!BLOB_KEY.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    await this.#client.send(new PutObjectCommand({
      Bucket: this.#bucket,
      Key: key,
      Body: bytes,
      ContentLength: bytes.byteLength,
      ContentType: contentType || contentTypeOf(key),
      CacheControl: CACHE_CONTROL
    }));
  }
  async get(key) {
    if (!BLOB_KEY.test(key)) return null;
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      if (!res.Body) return null;
      return {
        body: res.Body.transformToWebStream(),
        size: res.ContentLength ?? 0,
        contentType: res.ContentType ?? contentTypeOf(key)
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
  async check() {
    await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
  }
  /** Releases the client's sockets. */
  destroy() {
    this.#client.destroy();
  }
}
function isNotFound(err) {
  if (!(err instanceof Error)) return false;
  if (err.name === "NoSuchKey" || err.name === "NotFound") return true;
  return err.name !== "NoSuchBucket" && err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404;
}
export {
  S3Storage
};
//# sourceMappingURL=s3.js.map
