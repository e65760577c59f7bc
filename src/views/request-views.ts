// How stored records look to clients: the request summary, the status body and the output CSV
// rows. Shared by the HTTP routes and the CLI, which differ only in how an output is addressed
// (a URL under PUBLIC_BASE_URL, or a file path): each passes its own `urlOf`.
import type { ItemOutcomeKind, ItemRecord, ProductRecord, RequestRecord, Store } from '../store/types.js';
import type { OutputRow } from './output-csv.js';

export type ProductStatus = 'pending' | 'processing' | 'completed' | 'failed';

export interface ProductView {
  serial_number: number;
  product_name: string;
  input_urls: string[];
  output_urls: (string | null)[];
  processing_status: ProductStatus;
  errors: (string | null)[];
  /** Parallel to input_urls, like output_urls: null while that image is pending or when it failed. */
  outcomes: (ItemOutcomeKind | null)[];
  /** Parallel to outcomes: what to know about that image ("converted from HEIC", "first frame of 12"), else null. */
  notes: (string | null)[];
  input_bytes: (number | null)[];
  output_bytes: (number | null)[];
  /** Only when the request asked for renditions: by name, aligned with input_urls like output_urls. */
  renditions?: Record<string, (string | null)[]>;
}

/** The names of the renditions a request asked for, in the order asked (none: empty). */
export const renditionNamesOf = (r: Pick<RequestRecord, 'options'>): string[] => (r.options?.renditions ?? []).map((x) => x.name);

/** How a stored output is addressed to the reader: a URL (HTTP) or a file path (CLI). */
export type OutputAddress = (outputKey: string) => string;

/** The service's address of an output image. */
export const imageUrl = (publicBaseUrl: string): OutputAddress => (key) => `${publicBaseUrl}/images/${key}`;

export function requestView(r: RequestRecord) {
  return {
    request_id: r.id,
    status: r.status as Exclude<RequestRecord['status'], 'ingesting'>,
    file_name: r.fileName,
    progress: { total: r.total, done: r.done, failed: r.failed },
    bytes: { in: r.bytesIn, out: r.bytesOut },
    created_at: new Date(r.createdAt).toISOString(),
    updated_at: new Date(r.updatedAt).toISOString(),
  };
}

/** The status body's request-level fields: the same summary a list gives. */
export const requestStatusView = requestView;

/** A product is final like a request: completed if every image is final and one succeeded. */
function productStatus(items: (ItemRecord | undefined)[]): ProductStatus {
  if (items.some((i) => !i || i.state === 'running')) return 'processing';
  if (items.some((i) => i!.state === 'pending')) return items.some((i) => i!.state !== 'pending') ? 'processing' : 'pending';
  return items.some((i) => i!.state === 'done') ? 'completed' : 'failed';
}

/** Joins one page of products with their items' results (one store read for the page). */
export async function productViews(store: Store, requestId: string, products: ProductRecord[], urlOf: OutputAddress, renditionNames: readonly string[] = []): Promise<ProductView[]> {
  const items = await store.getItemsByUrl(requestId, products.flatMap((p) => p.inputUrls));
  const byUrl = new Map(items.map((i) => [i.url, i]));
  return products.map((p) => {
    const own = p.inputUrls.map((u) => byUrl.get(u));
    const done = own.map((i) => (i?.state === 'done' ? i : null));
    return {
      serial_number: p.serial,
      product_name: p.name,
      input_urls: p.inputUrls,
      output_urls: own.map((i) => (i?.state === 'done' && i.outputKey ? urlOf(i.outputKey) : null)),
      processing_status: productStatus(own),
      errors: own.map((i) => (i?.state === 'failed' ? i.error ?? 'failed' : null)),
      outcomes: done.map((i) => i?.outcome ?? null),
      notes: done.map((i) => i?.note ?? null),
      input_bytes: done.map((i) => i?.bytesIn ?? null),
      output_bytes: done.map((i) => i?.bytesOut ?? null),
      ...(renditionNames.length ? {
        renditions: Object.fromEntries(renditionNames.map((name) => [name, done.map((i) => {
          const key = i?.renditionKeys?.[name];
          return key ? urlOf(key) : null;
        })])),
      } : {}),
    };
  });
}

/** Every product of a request, page by page, as views (for the output CSV). */
export async function* allProductViews(store: Store, requestId: string, urlOf: OutputAddress, renditionNames: readonly string[] = [], pageSize = 500): AsyncGenerator<ProductView[]> {
  let cursor: string | null = null;
  do {
    const page = await store.listProducts(requestId, { limit: pageSize, cursor });
    if (page.items.length) yield await productViews(store, requestId, page.items, urlOf, renditionNames);
    cursor = page.nextCursor;
  } while (cursor);
}

/** Every product of a request as output CSV rows, page by page (rendition columns in the order of renditionNames). */
export async function* outputCsvRows(store: Store, requestId: string, urlOf: OutputAddress, renditionNames: readonly string[] = []): AsyncGenerator<OutputRow[]> {
  for await (const views of allProductViews(store, requestId, urlOf, renditionNames)) {
    yield views.map((v) => ({
      serial: v.serial_number, name: v.product_name, inputUrls: v.input_urls, outputUrls: v.output_urls,
      renditionUrls: renditionNames.map((name) => v.renditions?.[name] ?? []),
    }));
  }
}
