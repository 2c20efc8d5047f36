/** The load report as an HTML page with inline SVG plots (no external assets). */
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function plot(
  title: string,
  xs: number[],
  ys: number[],
  xLabel: string,
  yLabel: string,
  bars = false,
): string {
  const W = 640;
  const H = 220;
  const P = 40;
  const maxX = Math.max(1, ...xs);
  const maxY = Math.max(1, ...ys);
  const sx = (x: number): number => P + (x / maxX) * (W - 2 * P);
  const sy = (y: number): number => H - P + 0 - (y / maxY) * (H - 2 * P);
  const body = bars
    ? xs
        .map((x, i) => {
          const w = Math.max(1, (W - 2 * P) / xs.length - 1);
          const y = ys[i] ?? 0;
          return `<rect x="${(P + i * ((W - 2 * P) / xs.length)).toFixed(1)}" y="${sy(y).toFixed(1)}" width="${w.toFixed(1)}" height="${(H - P - sy(y)).toFixed(1)}" fill="#4a7"/>`;
        })
        .join('')
    : `<polyline fill="none" stroke="#37c" stroke-width="1.5" points="${xs.map((x, i) => `${sx(x).toFixed(1)},${sy(ys[i] ?? 0).toFixed(1)}`).join(' ')}"/>`;
  return `<h2>${esc(title)}</h2><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" style="border:1px solid #ccc">
<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#000"/><line x1="${P}" y1="${P}" x2="${P}" y2="${H - P}" stroke="#000"/>
${body}<text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">${esc(xLabel)} (max ${maxX.toFixed(0)})</text>
<text x="4" y="${P - 10}" font-size="11">${esc(yLabel)} (max ${maxY.toFixed(1)})</text></svg>`;
}

export function htmlReport(r: {
  summary: Record<string, unknown>;
  latencies: number[];
  throughput: { t: number; perS: number }[];
  backlog: { t: number; n: number }[];
}): string {
  const buckets = 40;
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const cap = sorted[Math.floor(sorted.length * 0.995)] ?? 1;
  const counts = new Array<number>(buckets).fill(0);
  for (const l of sorted)
    counts[Math.min(buckets - 1, Math.floor((l / Math.max(1, cap)) * buckets))]! += 1;
  const xs = counts.map((_, i) => ((i + 1) * cap) / buckets);
  return `<!doctype html><html><head><meta charset="utf-8"><title>Respawn load report</title></head>
<body style="font-family:sans-serif"><h1>npm run bench:load</h1>
<pre>${esc(JSON.stringify(r.summary, null, 2))}</pre>
${plot('Latency, ingress publish → first respawn.out.telegram reply', xs, counts, 'ms (bucket upper bound, to p99.5)', 'replies', true)}
${plot(
  'Throughput (ingress messages handled per second)',
  r.throughput.map((p) => p.t),
  r.throughput.map((p) => p.perS),
  'wall s',
  'msg/s',
)}
${plot(
  'Backlog (ingress consumers pending + unacked)',
  r.backlog.map((p) => p.t),
  r.backlog.map((p) => p.n),
  'wall s',
  'messages',
)}
</body></html>\n`;
}
