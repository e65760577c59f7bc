// The body every receiver gets for an event. The store keeps the event as lifecycle.eventPayload
// wrote it (fixed when the transition happened); the link to the output CSV depends on where
// this deployment is reached, so it is added here, the same way for every attempt.
export interface EventBody {
  type: string;
  timestamp: string;
  data: {
    request_id: string;
    status: string;
    progress: { total: number; done: number; failed: number };
    output_csv_url: string;
    /** the names of the renditions the request asked for; absent when none */
    renditions?: string[];
  };
}

/** `{ type, timestamp, data: { request_id, status, progress, output_csv_url, renditions? } }` from a stored event. */
export function renderEventBody(stored: string, publicBaseUrl: string): string {
  const event = JSON.parse(stored) as EventBody;
  const base = publicBaseUrl.replace(/\/+$/, '');
  // Events written by release 0.1.0 already carry a link; it is rebuilt from the request id.
  event.data = { ...event.data, output_csv_url: `${base}/api/v1/status/${encodeURIComponent(event.data.request_id)}/output.csv` };
  return JSON.stringify(event);
}
