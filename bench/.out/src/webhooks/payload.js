function eventPayloadBuilder(publicBaseUrl) {
  const base = publicBaseUrl.replace(/\/+$/, "");
  return (type, request, _eventId, at) => {
    const body = {
      type,
      timestamp: new Date(at).toISOString(),
      data: {
        request_id: request.id,
        status: request.status,
        progress: { total: request.total, done: request.done, failed: request.failed },
        output_csv_url: `${base}/api/v1/status/${encodeURIComponent(request.id)}/output.csv`
      }
    };
    return JSON.stringify(body);
  };
}
export {
  eventPayloadBuilder
};
//# sourceMappingURL=payload.js.map
