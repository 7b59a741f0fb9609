/** A refused token, as the gateway reports it: the catalogue code and the safe message. */
import { GatewayError } from '../errors/gateway-error.js';
import type { ErrorCode } from '../errors/error-codes.js';
import { TokenError, type TokenRejection } from './token-error.js';

const CODE: Readonly<Record<TokenRejection, ErrorCode>> = {
  missing: 'GW_ERR_TOKEN_MISSING',
  expired: 'GW_ERR_TOKEN_EXPIRED',
  wrong_device: 'GW_ERR_FORBIDDEN',
  too_large: 'GW_ERR_TOKEN_INVALID',
  malformed: 'GW_ERR_TOKEN_INVALID',
  algorithm: 'GW_ERR_TOKEN_INVALID',
  unknown_key: 'GW_ERR_TOKEN_INVALID',
  signature: 'GW_ERR_TOKEN_INVALID',
  not_yet_valid: 'GW_ERR_TOKEN_INVALID',
  issuer: 'GW_ERR_TOKEN_INVALID',
  audience: 'GW_ERR_TOKEN_INVALID',
  claims: 'GW_ERR_TOKEN_INVALID',
  revoked: 'GW_ERR_TOKEN_INVALID',
};

/** Maps a token refusal to the catalogue; any other error is rethrown (it is a bug, not bad input). */
export function tokenFailure(err: unknown): GatewayError {
  if (err instanceof TokenError) return new GatewayError(CODE[err.reason], err.message);
  if (err instanceof GatewayError) return err;
  throw err;
}
