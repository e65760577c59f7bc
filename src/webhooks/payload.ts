// The body every receiver gets for an event; fixed when the event is written to the outbox.
import type { EventPayloadBuilder } from '../store/types.js';

export interface EventBody {
  type: string;
  timestamp: string;
  data: {
    request_id: string;
    status: string;
    progress: { total: number; done: number; failed: number };
    output_csv_url: string;
  };
}

/** Builds `{ type, timestamp, data: { request_id, status, progress, output_csv_url } }`. */
export function eventPayloadBuilder(publicBaseUrl: string): EventPayloadBuilder {
  const base = publicBaseUrl.replace(/\/+$/, '');
  return (type, request, _eventId, at) => {
    const body: EventBody = {
      type,
      timestamp: new Date(at).toISOString(),
      data: {
        request_id: request.id,
        status: request.status,
        progress: { total: request.total, done: request.done, failed: request.failed },
        output_csv_url: `${base}/api/v1/status/${encodeURIComponent(request.id)}/output.csv`,
      },
    };
    return JSON.stringify(body);
  };
}
