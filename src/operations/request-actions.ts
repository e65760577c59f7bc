// What an operator can do to a request: cancel it, retry its failed images, delete it (its
// outputs are then cleaned up once no other request refers to them). Shared by the HTTP routes
// and the CLI; ownership is the caller's check.
import { AppError, notFound } from '../errors.js';
import type { Store } from '../store/types.js';
import type { OutputCleanup } from './output-cleanup.js';

export interface RequestActionsDeps {
  store: Store;
  /** Absent where this process does not manage storage (the CLI's own store has none). */
  cleanup?: OutputCleanup | null;
  /** Something changed that runners or dispatchers should look at now. */
  onChange?: () => void;
  onDeleted?: (reason: 'api' | 'retention') => void;
}

export class RequestActions {
  constructor(private readonly deps: RequestActionsDeps) {}

  async cancel(id: string): Promise<void> {
    const result = await this.deps.store.cancelRequest(id, Date.now());
    if (result === null) throw notFound('Request ID not found');
    if (result === 'final') throw new AppError(409, 'The request has already finished; only a running request can be cancelled');
    this.deps.onChange?.();
  }

  async retry(id: string): Promise<number> {
    const result = await this.deps.store.retryRequest(id, Date.now());
    if (result === null) throw notFound('Request ID not found');
    if (result === 'not-final') throw new AppError(409, 'The request is still running; retry it once it has finished');
    if (result === 'none-failed') throw new AppError(409, 'The request has no failed images to retry');
    this.deps.onChange?.();
    return result.retried;
  }

  async delete(id: string, reason: 'api' | 'retention' = 'api'): Promise<void> {
    const outputs = await this.deps.store.deleteRequest(id, Date.now());
    if (outputs === null) throw notFound('Request ID not found');
    this.deps.cleanup?.schedule(outputs);
    this.deps.onDeleted?.(reason);
  }
}
