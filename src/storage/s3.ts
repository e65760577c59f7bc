// Outputs in an S3-compatible bucket (AWS S3, MinIO, R2, ...), so every machine of a
// scale-out deployment serves the same /images. Credentials come from the SDK's default
// chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles), never config.
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  S3ServiceException, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { BLOB_KEY, contentTypeOf, type BlobStorage, type StoredBlob } from './types.js';

/** Keys are content addresses: the bytes under a key never change. */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';

export interface S3StorageOptions {
  bucket: string;
  /** Custom endpoint for S3-compatible servers; AWS when absent. */
  endpoint?: string;
  region: string;
  /** Path-style addressing (http://host/bucket/key), which most non-AWS servers need. */
  forcePathStyle: boolean;
  /** Explicit credentials (tests); the SDK's default chain when absent. */
  credentials?: S3ClientConfig['credentials'];
  /**
   * How long a request's socket may stay silent before the attempt fails (default 30000). The
   * SDK has no timeout of its own: without one a hung server would hold an image (and shutdown)
   * forever.
   */
  socketTimeoutMs?: number;
  /** Connect timeout per attempt (default 5000). */
  connectTimeoutMs?: number;
}

export class S3Storage implements BlobStorage {
  readonly kind = 's3' as const;
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(opts: S3StorageOptions) {
    this.#bucket = opts.bucket;
    this.#client = new S3Client({
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 5_000, socketTimeout: opts.socketTimeoutMs ?? 30_000 },
    });
  }

  /** PutObject replaces the object atomically, and the same key always carries the same bytes. */
  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    if (!BLOB_KEY.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    await this.#client.send(new PutObjectCommand({
      Bucket: this.#bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength,
      ContentType: contentType || contentTypeOf(key), CacheControl: CACHE_CONTROL,
    }));
  }

  async get(key: string): Promise<StoredBlob | null> {
    if (!BLOB_KEY.test(key)) return null;
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      if (!res.Body) return null;
      return {
        body: res.Body.transformToWebStream() as ReadableStream<Uint8Array>,
        size: res.ContentLength ?? 0,
        contentType: res.ContentType ?? contentTypeOf(key),
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    if (!BLOB_KEY.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
  }

  async modifiedAt(key: string): Promise<number | null> {
    if (!BLOB_KEY.test(key)) return null;
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return res.LastModified?.getTime() ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async *list(): AsyncIterable<{ key: string; modifiedAt: number }> {
    let token: string | undefined;
    do {
      const page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (o.Key && BLOB_KEY.test(o.Key)) yield { key: o.Key, modifiedAt: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async check(): Promise<void> {
    await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
  }

  /** Releases the client's sockets. */
  destroy(): void {
    this.#client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'NoSuchKey' || err.name === 'NotFound') return true;
  // A missing bucket is a configuration error, not a missing image.
  return err.name !== 'NoSuchBucket' && err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404;
}
