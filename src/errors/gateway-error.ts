import { ERRORS, type ErrorCode } from './error-codes.js';

/** An error with a catalogue code; `switch (err.code)` narrows on the literal union. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERRORS[code].status;
  }
}
