/**
 * close-socket.ts: the one way sockets are ended. The reason fits uWS's 123 bytes as valid UTF-8,
 * and no route calls uWS's end() itself or ends a socket inside a cork (which left TCP open for
 * uWS's end() timeout; test/integration/server-closes.test.ts measures it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeReason, endSocket } from '../../src/edge/close-socket.js';
import { CLOSE } from '../../src/errors/close-codes.js';
import { REPO_ROOT } from '../helpers/gateway-process.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('endSocket', () => {
  it('passes the code and a reason of at most 123 bytes, cut on a character boundary', () => {
    const calls: Array<[number | undefined, string | undefined]> = [];
    const ws = {
      end: (code?: number, reason?: string) => {
        calls.push([code, reason]);
      },
    };
    endSocket(ws, CLOSE.TOKEN_EXPIRED);
    endSocket(ws, CLOSE.POLICY_VIOLATION, 'Token expired');
    expect(calls).toEqual([
      [4001, 'token expired'],
      [1008, 'Token expired'],
    ]);
    for (const reason of ['é'.repeat(200), 'a' + '€'.repeat(100), '😀'.repeat(80), 'x'.repeat(500)]) {
      const cut = closeReason(reason);
      const bytes = Buffer.from(cut, 'utf8');
      expect(bytes.length).toBeLessThanOrEqual(123);
      expect(bytes.length).toBeGreaterThan(119);
      expect(reason.startsWith(cut)).toBe(true);
      expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toBe(cut);
    }
    expect(closeReason('short')).toBe('short');
  });

  it('is the only caller of uWS end(), and nothing ends a socket inside a cork', () => {
    const offenders: string[] = [];
    for (const file of sources(join(REPO_ROOT, 'src'))) {
      if (file.endsWith('close-socket.ts')) continue;
      const text = readFileSync(file, 'utf8');
      if (/\.end\(\s*(CLOSE\.|CloseCode\.|code\s*[,)]|ERRORS\[)/.test(text)) offenders.push(`${file}: calls end() with a close code`);
      if (/\.cork\(\s*\(\)\s*=>\s*[^;]*(endSocket|\.expired\(|\.revoked\()/.test(text)) offenders.push(`${file}: ends a socket inside a cork`);
    }
    expect(offenders).toEqual([]);
  });
});
