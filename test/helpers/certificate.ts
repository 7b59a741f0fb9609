/**
 * A self-signed EC (P-256) certificate for `localhost` and 127.0.0.1, valid one day, made now by
 * openssl in a temporary directory that is removed when the test ends. For the TLS listener, the
 * reverse-proxy tests and the config loader's checks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

export interface TestCertificate {
  /** The temporary directory holding both files (tests may write their own files there too). */
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  /** The certificate's PEM text, to trust it as a CA. */
  readonly pem: string;
}

export function selfSignedCertificate(prefix = 'gateway-tls-'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost'];
  args.push('-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert);
  execFileSync('openssl', args, { stdio: 'ignore' });
  return { dir, cert, key, pem: readFileSync(cert, 'utf8') };
}
