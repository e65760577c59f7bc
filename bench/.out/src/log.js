import { createRequire } from "node:module";
import pino, {} from "pino";
const REDACTED_PATHS = [
  "secret",
  "*.secret",
  "previousSecret",
  "*.previousSecret",
  "webhookSecret",
  "*.webhookSecret",
  "webhook_secret",
  "*.webhook_secret",
  "apiKey",
  "*.apiKey",
  "api_key",
  "*.api_key",
  "API_KEY",
  "*.API_KEY",
  "WEBHOOK_SECRET",
  "*.WEBHOOK_SECRET",
  "MONGODB_URI",
  "*.MONGODB_URI",
  "authorization",
  "headers.authorization",
  "*.headers.authorization",
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  "headers.cookie",
  "*.headers.cookie",
  "password",
  "*.password"
];
function prettyAvailable() {
  try {
    createRequire(import.meta.url).resolve("pino-pretty");
    return true;
  } catch {
    return false;
  }
}
function createLogger(config, destination) {
  const options = {
    level: config.LOG_LEVEL,
    base: void 0,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" }
  };
  if (!destination && config.NODE_ENV === "development" && prettyAvailable()) {
    options.transport = { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } };
  }
  return destination ? pino(options, destination) : pino(options);
}
export {
  REDACTED_PATHS,
  createLogger
};
//# sourceMappingURL=log.js.map
