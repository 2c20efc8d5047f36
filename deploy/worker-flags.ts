/**
 * The Node flags every worker process (`actors/main.ts`) runs with. deploy/Dockerfile,
 * docker-compose.yml and deploy/k8s start workers with them, and the benchmarks spawn workers
 * with them (test/bench/procs.ts); test/deploy/worker-flags.test.ts keeps them equal.
 *
 * `--max-old-space-size`: without a limit V8 sizes the heap from the machine's memory and lets
 * garbage pile up; a worker's live data is small (state lives in PostgreSQL), so it collects
 * sooner and stays small. Measured with bench:load (2,000 players, 6 h evening peak, 100×):
 * peak RSS 482 MB without a limit, 261 MB with 320 MB, at the same speed and latency.
 * A container's memory limit must leave room above it (deploy/k8s: 1 GiB).
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-old-space-size=384'];
