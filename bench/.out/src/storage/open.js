import { LocalStorage } from "./local.js";
import { S3Storage } from "./s3.js";
function openStorage(config) {
  if (config.STORAGE === "s3") {
    if (!config.S3_BUCKET) throw new Error("S3_BUCKET is required when STORAGE=s3");
    return new S3Storage({
      bucket: config.S3_BUCKET,
      ...config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {},
      region: config.S3_REGION,
      forcePathStyle: config.S3_FORCE_PATH_STYLE
    });
  }
  return new LocalStorage(config.IMAGE_STORAGE_PATH);
}
export {
  openStorage
};
//# sourceMappingURL=open.js.map
