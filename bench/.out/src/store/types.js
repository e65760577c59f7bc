const EVENT_TYPES = ["processing.started", "processing.completed", "processing.failed"];
export {
  EVENT_TYPES
};
//# sourceMappingURL=types.js.map
