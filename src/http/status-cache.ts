// Rendered status pages, reused while their request's version is unchanged. A status page
// costs a few store reads and some JSON; under polling load most calls ask for a page that
// has not changed since the last one. Bounded by total size; least recently used goes first.
export class StatusCache {
  readonly #entries = new Map<string, { version: number; body: string }>();
  #bytes = 0;

  constructor(private readonly maxBytes = 16 * 1024 * 1024) {}

  get(key: string, version: number): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry || entry.version !== version) return undefined;
    this.#entries.delete(key); // re-insert: most recently used last
    this.#entries.set(key, entry);
    return entry.body;
  }

  set(key: string, version: number, body: string): void {
    this.#drop(key);
    if (body.length > this.maxBytes) return;
    this.#entries.set(key, { version, body });
    this.#bytes += body.length;
    for (const oldest of this.#entries.keys()) {
      if (this.#bytes <= this.maxBytes) break;
      this.#drop(oldest);
    }
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#bytes -= entry.body.length;
    this.#entries.delete(key);
  }
}
