const OUTPUT_CSV_HEADER = ["S. No.", "Product Name", "Input Image Urls", "Output Image Urls"];
const FORMULA_START = /^[=+\-@\t\r]/;
function neutralizeCell(value) {
  return FORMULA_START.test(value) ? `'${value}` : value;
}
function csvCell(value, forceQuote = false) {
  const v = neutralizeCell(value);
  return forceQuote || /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
function outputCsvLine(row) {
  const outputs = row.inputUrls.map((_, i) => row.outputUrls[i] ?? "");
  return [
    csvCell(String(row.serial)),
    csvCell(row.name),
    csvCell(row.inputUrls.join(","), true),
    csvCell(outputs.join(","), true)
  ].join(",") + "\r\n";
}
function outputCsvStream(pages) {
  const encoder = new TextEncoder();
  let iterator = null;
  return new ReadableStream(
    {
      start(controller) {
        controller.enqueue(encoder.encode(OUTPUT_CSV_HEADER.map((h) => csvCell(h)).join(",") + "\r\n"));
      },
      async pull(controller) {
        iterator ??= pages[Symbol.asyncIterator]();
        for (; ; ) {
          const next = await iterator.next();
          if (next.done) {
            controller.close();
            return;
          }
          if (next.value.length === 0) continue;
          controller.enqueue(encoder.encode(next.value.map(outputCsvLine).join("")));
          return;
        }
      },
      async cancel() {
        await iterator?.return?.();
      }
    },
    { highWaterMark: 1 }
  );
}
export {
  OUTPUT_CSV_HEADER,
  csvCell,
  neutralizeCell,
  outputCsvLine,
  outputCsvStream
};
//# sourceMappingURL=output-csv.js.map
