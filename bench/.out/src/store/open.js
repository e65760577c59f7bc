import { join } from "node:path";
async function openStore(config) {
  if (config.MONGODB_URI) {
    const { openMongoStore } = await import("./mongo.js");
    return openMongoStore(config.MONGODB_URI, config.DATABASE_NAME, { connectTimeoutMs: config.MONGODB_CONNECT_TIMEOUT_MS });
  }
  const { openSqliteStore } = await import("./sqlite.js");
  return openSqliteStore(join(config.DATA_DIR, "store.db"));
}
export {
  openStore
};
//# sourceMappingURL=open.js.map
