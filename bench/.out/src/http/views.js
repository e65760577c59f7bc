function imageUrl(publicBaseUrl, key) {
  return `${publicBaseUrl}/images/${key}`;
}
function requestView(r) {
  return {
    request_id: r.id,
    status: r.status,
    progress: { total: r.total, done: r.done, failed: r.failed },
    created_at: new Date(r.createdAt).toISOString(),
    updated_at: new Date(r.updatedAt).toISOString()
  };
}
function productStatus(items) {
  if (items.some((i) => !i || i.state === "running")) return "processing";
  if (items.some((i) => i.state === "pending")) return items.some((i) => i.state !== "pending") ? "processing" : "pending";
  return items.some((i) => i.state === "done") ? "completed" : "failed";
}
async function productViews(store, requestId, products, publicBaseUrl) {
  const items = await store.getItemsByUrl(requestId, products.flatMap((p) => p.inputUrls));
  const byUrl = new Map(items.map((i) => [i.url, i]));
  return products.map((p) => {
    const own = p.inputUrls.map((u) => byUrl.get(u));
    return {
      serial_number: p.serial,
      product_name: p.name,
      input_urls: p.inputUrls,
      output_urls: own.map((i) => i?.state === "done" && i.outputKey ? imageUrl(publicBaseUrl, i.outputKey) : null),
      processing_status: productStatus(own),
      errors: own.map((i) => i?.state === "failed" ? i.error ?? "failed" : null)
    };
  });
}
async function* allProductViews(store, requestId, publicBaseUrl, pageSize = 500) {
  let cursor = null;
  do {
    const page = await store.listProducts(requestId, { limit: pageSize, cursor });
    if (page.items.length) yield await productViews(store, requestId, page.items, publicBaseUrl);
    cursor = page.nextCursor;
  } while (cursor);
}
export {
  allProductViews,
  imageUrl,
  productViews,
  requestView
};
//# sourceMappingURL=views.js.map
