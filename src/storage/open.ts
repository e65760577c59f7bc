// Chooses the blob backend from configuration: local disk by default, S3 with STORAGE=s3.
import type { Config } from '../config.js';
import { LocalStorage } from './local.js';
import { S3Storage } from './s3.js';
import type { BlobStorage } from './types.js';

export function openStorage(config: Config): BlobStorage {
  if (config.STORAGE === 's3') {
    if (!config.S3_BUCKET) throw new Error('S3_BUCKET is required when STORAGE=s3');
    return new S3Storage({
      bucket: config.S3_BUCKET,
      ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
      region: config.S3_REGION,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
    });
  }
  return new LocalStorage(config.IMAGE_STORAGE_PATH);
}
