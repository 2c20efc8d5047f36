/**
 * A throwaway self-signed certificate for the fake's HTTPS listener. The Azure SDK's
 * bearer-token policy refuses plain http://, so the fake must speak TLS; Node has no API to
 * make an X.509 certificate, so Debian's `openssl` makes one in a private temporary directory.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SelfSignedCert {
  /** PEM certificate; also the CA to trust (it signs itself). */
  cert: string;
  key: string;
  /** Where the certificate is on disk, for NODE_EXTRA_CA_CERTS in a child process. */
  certPath: string;
  dispose(): Promise<void>;
}

export async function createSelfSignedCert(
  opts: { openssl?: string; hosts?: readonly string[] } = {},
): Promise<SelfSignedCert> {
  const dir = await mkdtemp(join(tmpdir(), 'respawn-arm-fake-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const hosts = opts.hosts ?? ['localhost', '127.0.0.1', '::1'];
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  try {
    // An EC key: generated in milliseconds, where RSA-2048 can take a second on a busy machine.
    await run(opts.openssl ?? 'openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=respawn-arm-fake',
      '-addext',
      `subjectAltName=${san}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      'could not make a self-signed certificate with openssl (apt-get install openssl)',
      { cause: err },
    );
  }
  const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return {
    cert,
    key,
    certPath,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
