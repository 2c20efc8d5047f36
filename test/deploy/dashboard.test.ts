/**
 * deploy/grafana/respawn-dashboard.json charts only metrics the processes really export: the
 * names in its queries are checked against the metrics the runtime's and the gateway's own
 * factories register (actors/runtime/metrics.ts, gateway/metrics.ts), with the type each
 * query needs (a histogram's _bucket for quantiles, a counter under rate()).
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createRoleMetrics, createRuntimeMetrics } from '../../actors/runtime/metrics.ts';
import {
  createIngressMetrics,
  createOutboundMetrics,
  createSenderLeaseMetrics,
} from '../../gateway/metrics.ts';
import { readRepo } from './support.ts';

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; query?: unknown }[] };
}

const dashboard = JSON.parse(readRepo('deploy/grafana/respawn-dashboard.json')) as Dashboard;

async function exportedMetrics(): Promise<Map<string, string>> {
  const registry = new Registry();
  createRuntimeMetrics(registry);
  createRoleMetrics(registry);
  createIngressMetrics(registry);
  createOutboundMetrics(registry);
  createSenderLeaseMetrics(registry);
  const metrics = await registry.getMetricsAsJSON();
  return new Map(metrics.map((m) => [m.name, String(m.type)]));
}

const queries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
);
const queryTexts = [
  ...queries.map((q) => q.expr),
  ...dashboard.templating.list.map((v) => JSON.stringify(v.query ?? '')),
];

/** Every `respawn_…` series a query selects, e.g. respawn_actor_handle_seconds_bucket. */
const seriesIn = (expr: string): string[] =>
  [...expr.matchAll(/\brespawn_[a-z0-9_]+/g)].map((m) => m[0]);

describe('Grafana dashboard', () => {
  it('has panels with queries', () => {
    expect(queries.length).toBeGreaterThanOrEqual(12);
  });

  it('uses only metric names the actors and the gateway export, with a fitting suffix', async () => {
    const exported = await exportedMetrics();
    const unknown: string[] = [];
    for (const series of queryTexts.flatMap(seriesIn)) {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(series);
      if (exported.get(series) === 'counter' || exported.get(series) === 'gauge') continue;
      if (histogram !== null && exported.get(histogram[1]!) === 'histogram') continue;
      unknown.push(series);
    }
    expect(unknown).toEqual([]);
  });

  it('takes quantiles of histogram buckets and rates of counters only', async () => {
    const exported = await exportedMetrics();
    for (const { panel, expr } of queries) {
      if (expr.includes('histogram_quantile')) {
        for (const s of seriesIn(expr)) expect(s, panel).toMatch(/_bucket$/);
      }
      for (const m of expr.matchAll(/\b(?:rate|increase)\((respawn_[a-z0-9_]+)/g)) {
        const base = m[1]!.replace(/_(bucket|sum|count)$/, '');
        expect(['counter', 'histogram'], `${panel}: ${m[1]}`).toContain(exported.get(base));
      }
    }
  });

  it('covers what an operator watches', () => {
    const used = new Set(queryTexts.flatMap(seriesIn));
    for (const name of [
      'respawn_actor_messages_handled_total',
      'respawn_actor_handle_seconds_bucket',
      'respawn_actor_dead_letters_total',
      'respawn_actor_parked_total',
      'respawn_actor_parking_lot_depth',
      'respawn_actor_outbox_lag_seconds',
      'respawn_actor_timer_lag_seconds_bucket',
      'respawn_gateway_webhook_requests_total',
      'respawn_gateway_rejections_total',
      'respawn_gateway_telegram_out_total',
    ]) {
      expect(used, name).toContain(name);
    }
    const p50p99 = queries.filter((q) => q.expr.includes('respawn_actor_handle_seconds_bucket'));
    expect(p50p99.map((q) => /histogram_quantile\((0\.\d+)/.exec(q.expr)?.[1])).toEqual([
      '0.5',
      '0.99',
    ]);
  });
});
