// Webhook delivery through the whole service: durable across kill -9, and never in the way of
// image processing. Receivers listen on 127.0.0.9 (allowlisted), images on 127.0.0.10.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { freePort, spawnService, startTestService, tempDir, upload, waitForStatus } from './helpers/service.js';
import { until } from './helpers/poll.js';

interface Received { headers: IncomingMessage['headers']; body: string }

function startReceiver(port: number, handle: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.writeHead(204).end()) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      handle(req, res);
    });
  });
  return new Promise<{ port: number; received: Received[]; close(): Promise<void> }>((resolve) => {
    server.listen(port, '127.0.0.9', () => resolve({
      port,
      received,
      close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
    }));
  });
}

async function subscribe(base: string, url: string, events: string[]) {
  const res = await fetch(`${base}/api/v1/webhook/configure`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhook_url: url, events }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string };
}

const SEED_HEADER = 'S. No.,Product Name,Input Image Urls';

describe('webhooks end to end', () => {
  let images: ImageServer;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.10' });
    images.serve('/a.jpg', new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg'))), 'image/jpeg');
  });
  afterAll(async () => {
    await images?.close();
  });

  it('delivers an event written before a kill -9 once the service is back', async () => {
    const dataDir = tempDir();
    const receiverPort = await freePort();
    // Nothing listens on the receiver's port yet: the first attempts fail and stay queued.
    // If the kill lands while an attempt is in flight, that delivery stays leased to the dead
    // process until its (short, renewed) lease runs out.
    const env = { FETCH_ALLOWLIST: `127.0.0.9/32,${images.cidr}`, WEBHOOK_BACKOFF_SCALE: '0.0002', WEBHOOK_TIMEOUT_MS: '500' };
    const first = await spawnService(env, dataDir);
    const sub = await subscribe(first.base, `http://127.0.0.9:${receiverPort}/hook`, ['processing.completed']);
    const res = await upload(first.base, `${SEED_HEADER}\n1,SKU,${images.url('/a.jpg')}\n`);
    await waitForStatus(first.base, res.body.request_id);
    first.proc.kill('SIGKILL');
    await first.exited;

    const receiver = await startReceiver(receiverPort);
    const second = await spawnService(env, dataDir);
    try {
      await until(() => receiver.received.length > 0, 'the delivery after the restart', { timeoutMs: 60_000 });
      expect(receiver.received).toHaveLength(1);
      const [msg] = receiver.received;
      const verified = new Webhook(sub.secret).verify(msg!.body, {
        'webhook-id': String(msg!.headers['webhook-id']),
        'webhook-timestamp': String(msg!.headers['webhook-timestamp']),
        'webhook-signature': String(msg!.headers['webhook-signature']),
      }) as any;
      expect(verified).toMatchObject({ type: 'processing.completed', data: { request_id: res.body.request_id, status: 'completed' } });
      expect(verified.data.output_csv_url).toMatch(new RegExp(`/api/v1/status/${res.body.request_id}/output\\.csv$`));
    } finally {
      await second.stop();
      await receiver.close();
    }
  }, 120_000);

  it('sends a delivery cut off by kill -9 again within 30 s at the default settings, once', async () => {
    const dataDir = tempDir();
    let answered = 0;
    // The first attempt is held unanswered (the process dies while sending it); later ones get 204.
    const receiver = await startReceiver(await freePort(), (_req, res) => {
      if (receiver.received.length > 1) {
        answered++;
        res.writeHead(204).end();
      }
    });
    const env = { FETCH_ALLOWLIST: `127.0.0.9/32,${images.cidr}` }; // WEBHOOK_TIMEOUT_MS and the lease at their defaults
    const first = await spawnService(env, dataDir);
    let second: Awaited<ReturnType<typeof spawnService>> | null = null;
    try {
      const sub = await subscribe(first.base, `http://127.0.0.9:${receiver.port}/hook`, ['processing.completed']);
      const res = await upload(first.base, `${SEED_HEADER}\n1,SKU,${images.url('/a.jpg')}\n`);
      await waitForStatus(first.base, res.body.request_id);
      await until(() => receiver.received.length > 0, 'the first attempt to arrive');
      first.proc.kill('SIGKILL');
      await first.exited;
      const killedAt = Date.now();
      second = await spawnService(env, dataDir);
      await until(() => answered > 0, 'the resend', { timeoutMs: 30_000 });
      const seconds = (Date.now() - killedAt) / 1000;
      console.log(`webhook redelivery after kill -9: ${seconds.toFixed(1)} s`);
      expect(answered).toBe(1);
      // Once the resend is recorded as delivered (a final state) nothing can be sent again.
      const deliveries = async () =>
        ((await (await fetch(`${second!.base}/api/v1/webhooks/${sub.id}/deliveries`)).json()) as { deliveries: Array<{ state: string; attempts: number }> }).deliveries;
      await until(async () => (await deliveries())[0]?.state === 'delivered', 'the resend to be recorded');
      expect(await deliveries()).toHaveLength(1);
      expect(receiver.received).toHaveLength(2); // the cut-off attempt and exactly one resend
      expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
    } finally {
      await second?.stop();
      await receiver.close();
    }
  }, 60_000);

  it('completes a request on time while its receiver never answers', async () => {
    const hanging = await startReceiver(await freePort(), () => { /* never answers */ });
    const svc = await startTestService({ FETCH_ALLOWLIST: `127.0.0.9/32,${images.cidr}`, WEBHOOK_TIMEOUT_MS: '60000' });
    try {
      const res = await upload(svc.base, `${SEED_HEADER}\n1,SKU,${images.url('/a.jpg')}\n`, {
        fields: { webhook_url: `http://127.0.0.9:${hanging.port}/slow` },
      });
      expect(res.status).toBe(202);
      expect(res.body.webhook_secret).toMatch(/^whsec_/);
      const status = await waitForStatus(svc.base, res.body.request_id, { timeoutMs: 20_000 });
      expect(status.status).toBe('completed');
      // The receiver holds the started event unanswered (a 60 s timeout), yet processing
      // finished without waiting for it.
      expect(hanging.received.map((r) => JSON.parse(r.body).type)).toContain('processing.started');
    } finally {
      await svc.stop();
      await hanging.close();
    }
  }, 60_000);
});
