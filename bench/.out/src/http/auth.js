import { timingSafeEqual, createHash } from "node:crypto";
import { AppError } from "../errors.js";
const digest = (s) => createHash("sha256").update(s).digest();
function requireApiKey(apiKey) {
  const expected = digest(apiKey);
  return async (c, next) => {
    const bearer = c.req.header("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
    const given = c.req.header("x-api-key") ?? bearer;
    if (given === void 0) throw new AppError(401, "Missing API key: send X-API-Key or Authorization: Bearer");
    if (!timingSafeEqual(digest(given), expected)) throw new AppError(403, "Invalid API key");
    await next();
  };
}
export {
  requireApiKey
};
//# sourceMappingURL=auth.js.map
