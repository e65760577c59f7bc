import busboy from "busboy";
import { AppError } from "../errors.js";
const NOT_CSV_TYPES = /^(image|video|audio|font|model)\/|^application\/(pdf|zip|gzip|x-gzip|x-tar|x-7z-compressed|x-rar-compressed|vnd\.rar|x-bzip2|java-archive|x-msdownload|vnd\.openxmlformats|vnd\.oasis\.opendocument|msword|x-sqlite3|wasm)/i;
const NOT_CSV_EXTENSIONS = /\.(png|jpe?g|gif|webp|avif|heic|bmp|tiff?|svg|ico|pdf|zip|gz|tgz|tar|7z|rar|bz2|xz|xlsx|xlsm|xls|ods|docx?|pptx?|exe|dll|so|bin|mp3|mp4|mov|avi|wav|json|xml|html?)$/i;
function notCsvReason(filename, mimeType) {
  if (NOT_CSV_TYPES.test(mimeType)) return `the file part has Content-Type ${mimeType}; expected a CSV (text/csv)`;
  if (NOT_CSV_EXTENSIONS.test(filename)) return `the file ${JSON.stringify(filename)} is not a CSV; expected a .csv file (text/csv)`;
  return null;
}
const tooLarge = (max) => new AppError(413, `upload is larger than ${max} bytes (MAX_UPLOAD_BYTES)`);
async function readUpload(request, limits, onFile) {
  const maxFields = limits.maxFields ?? 8;
  const maxFieldBytes = limits.maxFieldBytes ?? 8192;
  const fileField = limits.fileField ?? "file";
  const contentType = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) {
    throw new AppError(
      415,
      `expected Content-Type multipart/form-data with the CSV in the field "${fileField}", got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : "none"}`
    );
  }
  const declared = request.headers.get("content-length");
  if (declared && /^\d+$/.test(declared.trim()) && Number(declared) > limits.maxBytes) {
    await request.body?.cancel().catch(() => {
    });
    throw tooLarge(limits.maxBytes);
  }
  if (!request.body) throw new AppError(400, `missing the "${fileField}" field (the CSV file); the request has no body`);
  let bb;
  try {
    bb = busboy({
      headers: { "content-type": contentType },
      limits: { files: 1, fields: maxFields, fieldSize: maxFieldBytes + 1, headerPairs: 100 }
    });
  } catch (err) {
    await request.body.cancel().catch(() => {
    });
    throw new AppError(400, `malformed multipart/form-data Content-Type: ${err.message}`);
  }
  const reader = request.body.getReader();
  const fields = /* @__PURE__ */ Object.create(null);
  let received = 0;
  let failure = null;
  let fileInfo = null;
  let onFileDone = Promise.resolve();
  let result = null;
  const wakers = /* @__PURE__ */ new Set();
  const wakeAll = () => {
    for (const w of wakers) w();
  };
  const fail = (err) => {
    if (failure) return;
    failure = err;
    reader.cancel(err).catch(() => {
    });
    if (fileInfo && !fileInfo.stream.destroyed) fileInfo.stream.destroy(err);
    bb.destroy();
    wakeAll();
  };
  bb.on("error", (err) => fail(new AppError(400, `malformed multipart/form-data body: ${err.message}`)));
  bb.on("filesLimit", () => fail(new AppError(400, `more than one file in the upload; send one CSV in the field "${fileField}"`)));
  bb.on("fieldsLimit", () => fail(new AppError(400, `too many form fields (the limit is ${maxFields})`)));
  bb.on("field", (name, value, info) => {
    if (name === fileField) {
      fail(new AppError(400, `the field "${fileField}" must be a file part with a filename (e.g. curl -F "${fileField}=@products.csv")`));
    } else if (info.valueTruncated || Buffer.byteLength(value) > maxFieldBytes) {
      fail(new AppError(400, `the field ${JSON.stringify(name.slice(0, 100))} is longer than ${maxFieldBytes} bytes`));
    } else {
      fields[name] = value;
    }
  });
  bb.on("file", (name, stream, info) => {
    stream.on("error", () => {
    });
    const filename = info.filename ?? "";
    if (name !== fileField) {
      stream.resume();
      return fail(new AppError(400, `unexpected file field ${JSON.stringify(name.slice(0, 100))}; send the CSV in the field "${fileField}"`));
    }
    const reason = notCsvReason(filename, info.mimeType);
    if (reason) {
      stream.resume();
      return fail(new AppError(415, reason));
    }
    fileInfo = { filename, stream };
    const file = { stream, filename, mimeType: info.mimeType, fieldsBefore: { ...fields } };
    onFileDone = (async () => {
      try {
        result = { value: await onFile(file) };
        if (!stream.destroyed && !stream.readableEnded) stream.resume();
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    })();
  });
  const parsed = new Promise((resolve) => {
    bb.once("close", resolve);
    wakers.add(resolve);
  });
  const waitDrain = () => new Promise((resolve) => {
    const done2 = () => {
      bb.off("drain", done2);
      bb.off("close", done2);
      wakers.delete(done2);
      resolve();
    };
    bb.on("drain", done2);
    bb.on("close", done2);
    wakers.add(done2);
  });
  const pump = async () => {
    try {
      for (; ; ) {
        if (failure) return;
        const { done: done2, value } = await reader.read();
        if (failure) return;
        if (done2) break;
        received += value.byteLength;
        if (received > limits.maxBytes) return fail(tooLarge(limits.maxBytes));
        const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        if (!bb.write(chunk)) await waitDrain();
      }
      bb.end();
    } catch (err) {
      fail(new AppError(400, `the upload was interrupted before it finished (${err.message})`));
    }
  };
  await pump();
  await parsed;
  await onFileDone;
  if (failure) throw failure;
  if (!fileInfo || !result) {
    throw new AppError(400, `missing the "${fileField}" field (the CSV file)`);
  }
  const done = result;
  return { result: done.value, fields: { ...fields }, filename: fileInfo.filename, bytes: received };
}
export {
  notCsvReason,
  readUpload
};
//# sourceMappingURL=multipart.js.map
