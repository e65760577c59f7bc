import process from "node:process";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { startService } from "./service.js";
async function main() {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config);
  let service;
  try {
    service = await startService(config, log);
  } catch (err) {
    log.fatal(`cannot start: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
    process.exit(1);
  }
  let signals = 0;
  const shutdown = (signal) => {
    if (++signals > 1) process.exit(1);
    log.info({ signal }, "shutting down");
    service.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      }
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
void main();
//# sourceMappingURL=main.js.map
