import { z } from "@hono/zod-openapi";
const ErrorSchema = z.object({ detail: z.string().openapi({ example: "Request ID not found" }) }).openapi("Error");
const error = (description) => ({ content: { "application/json": { schema: ErrorSchema } }, description });
const commonErrors = {
  401: error("API key missing (only when API_KEY is set)"),
  403: error("API key wrong (only when API_KEY is set)"),
  500: error("Internal error")
};
const errorResponses = {
  400: error("Bad input"),
  404: error("Unknown resource"),
  409: error("Conflict"),
  413: error("Upload too large"),
  415: error("Not a CSV upload")
};
const RequestStatusSchema = z.enum(["received", "processing", "completed", "failed"]).openapi("RequestStatus");
const ProgressSchema = z.object({ total: z.number().int(), done: z.number().int(), failed: z.number().int() }).openapi("Progress", { example: { total: 3, done: 2, failed: 1 } });
export {
  ErrorSchema,
  ProgressSchema,
  RequestStatusSchema,
  commonErrors,
  errorResponses
};
//# sourceMappingURL=schemas.js.map
