/**
 * `npm run replay -- export|play …`: record the ingress streams of a deployment to a file and
 * replay such a file into another (docs/replay.md; `npm run replay -- --help`).
 */
import { runCli } from './replay/cli.ts';

const abort = new AbortController();
let interrupted = false;
const onSignal = (): void => {
  // First Ctrl-C: stop after the message in hand and print the summary; second: leave now.
  if (interrupted) process.exit(130);
  interrupted = true;
  abort.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: abort.signal,
});
process.exit(interrupted && code === 0 ? 130 : code);
