/**
 * Why a token was refused, as a string-literal union (`switch (err.reason)` narrows). The message
 * is safe to show a client: it never contains the token, a key, or a library's internal text.
 */
export type TokenRejection =
  | 'missing'
  | 'too_large'
  | 'malformed'
  | 'algorithm'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'revoked'
  | 'wrong_device';

const MESSAGES: Readonly<Record<TokenRejection, string>> = {
  missing: 'A token is required',
  too_large: 'Token is too large',
  malformed: 'Token is malformed',
  algorithm: 'Token algorithm is not accepted',
  unknown_key: 'Token key is unknown',
  signature: 'Token signature is invalid',
  expired: 'Token expired',
  not_yet_valid: 'Token is not valid yet',
  issuer: 'Token issuer is not accepted',
  audience: 'Token audience is not accepted',
  claims: 'Token claims are invalid',
  revoked: 'Token was revoked',
  wrong_device: 'Token does not grant this device',
};

export class TokenError extends Error {
  readonly reason: TokenRejection;

  constructor(reason: TokenRejection) {
    super(MESSAGES[reason]);
    this.name = 'TokenError';
    this.reason = reason;
  }
}
