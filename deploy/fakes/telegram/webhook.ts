/**
 * Webhook delivery as Telegram does it: one update at a time, in order, with the secret token
 * header; anything but a 2xx leaves the update pending and it is tried again later.
 */
import type { Update } from 'grammy/types';
import type { WebhookConfig } from './methods.ts';
import { updateType, type FakeState } from './state.ts';

export interface Delivery {
  updateId: number;
  url: string;
  /** HTTP status, or 0 when the request failed (connection refused, timeout). */
  status: number;
  at: number;
}

export interface WebhookDeliverer {
  kick(): void;
  stop(): Promise<void>;
  readonly deliveries: Delivery[];
}

const DELIVERY_TIMEOUT_MS = 10_000;

export function createWebhookDeliverer(opts: {
  state: FakeState;
  webhook: () => WebhookConfig | undefined;
  retryMs: number;
}): WebhookDeliverer {
  const deliveries: Delivery[] = [];
  let running: Promise<void> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  async function post(cfg: WebhookConfig, u: Update): Promise<number> {
    try {
      const res = await fetch(cfg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(cfg.secretToken === undefined
            ? {}
            : { 'x-telegram-bot-api-secret-token': cfg.secretToken }),
        },
        body: JSON.stringify(u),
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  }

  async function loop(): Promise<void> {
    for (;;) {
      const cfg = opts.webhook();
      const head = opts.state.pending[0];
      if (stopped || cfg === undefined || head === undefined) return;
      if (cfg.allowedUpdates !== undefined && !cfg.allowedUpdates.includes(updateType(head))) {
        opts.state.pending.shift();
        continue;
      }
      const status = await post(cfg, head);
      deliveries.push({ updateId: head.update_id, url: cfg.url, status, at: Date.now() });
      if (status >= 200 && status < 300) {
        if (opts.state.pending[0] === head) opts.state.pending.shift();
      } else {
        await pause(opts.retryMs);
      }
    }
  }

  function kick(): void {
    if (stopped) return;
    if (running !== undefined) {
      // A new update or webhook: retry a waiting delivery now rather than after the pause.
      wake?.();
      return;
    }
    running = loop().finally(() => {
      running = undefined;
      // Something may have been queued between the loop's last look and now.
      if (opts.webhook() !== undefined && opts.state.pending.length > 0) kick();
    });
  }

  return {
    deliveries,
    kick,
    async stop() {
      stopped = true;
      wake?.();
      await running;
    },
  };
}
