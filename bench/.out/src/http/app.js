import { OpenAPIHono } from "@hono/zod-openapi";
import { AppError } from "../errors.js";
import { requireApiKey } from "./auth.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerImageRoutes } from "./routes/images.js";
import { registerStatusRoutes } from "./routes/status.js";
import { registerUploadRoutes } from "./routes/upload.js";
import { registerWebhookRoutes } from "./routes/webhooks.js";
function errorResponse(c, status, detail) {
  return c.json({ detail }, status);
}
function createApp(deps) {
  const app = new OpenAPIHono({
    // Schema validation failures answer like every other bad input: 400 { detail }.
    defaultHook: (result, c) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
        return errorResponse(c, 400, `${where}${issue?.message ?? "invalid request"}`);
      }
    }
  });
  app.onError((err, c) => {
    if (err instanceof AppError) return errorResponse(c, err.status, err.detail);
    deps.log.error({ err, path: c.req.path }, "unhandled error");
    return errorResponse(c, 500, "Internal server error");
  });
  app.notFound((c) => errorResponse(c, 404, "Not found"));
  registerHealthRoutes(app, deps);
  if (deps.role === "worker") return app;
  if (deps.config.API_KEY) app.use("/api/v1/*", requireApiKey(deps.config.API_KEY));
  registerUploadRoutes(app, deps);
  registerStatusRoutes(app, deps);
  registerWebhookRoutes(app, deps);
  registerImageRoutes(app, deps);
  return app;
}
export {
  createApp,
  errorResponse
};
//# sourceMappingURL=app.js.map
