class AppError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.name = "AppError";
  }
  status;
  detail;
}
const badRequest = (detail) => new AppError(400, detail);
const notFound = (detail) => new AppError(404, detail);
export {
  AppError,
  badRequest,
  notFound
};
//# sourceMappingURL=errors.js.map
