/**
 * The two kinds of token an Azure Web PubSub access key signs (docs/compat/azure-webpubsub.md §1.3,
 * §2.5, §3), checked and made here with jose. Both are HS256 with the access key's UTF-8 bytes.
 *
 *   REST     signed by the service SDK per request: `aud` = the request URL. Compared on the path
 *            only, without the query and a trailing `/` (the real service does the same; hosts differ
 *            behind proxies and port mappings).
 *   client   from `getClientAccessToken` or `negotiate`: `aud` = <endpoint>/client/hubs/<hub>,
 *            `sub` = user, `role` and `webpubsub.group` = one string or a list.
 */
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { GatewayError } from '../../errors/gateway-error.js';

interface ClientGrant {
  readonly userId: string | null;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  /** ms since the epoch */
  readonly expiresAt: number;
  /** The token's claims, for the upstream `connect` event. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

interface ClientTokenRequest {
  readonly userId?: string;
  readonly roles?: readonly string[];
  readonly groups?: readonly string[];
  readonly minutes?: number;
}

const MAX_TOKEN_BYTES = 8192;

function audPath(aud: string): string | null {
  try {
    return new URL(aud).pathname.replace(/\/+$/, '');
  } catch {
    return null;
  }
}

const list = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

export class AzureAccessTokens {
  private readonly key: Uint8Array;

  constructor(
    accessKey: string,
    private readonly clockToleranceS = 5,
  ) {
    this.key = new TextEncoder().encode(accessKey);
  }

  private async verify(token: string | undefined, expectedPath: string): Promise<JWTPayload> {
    if (token === undefined || token === '')
      throw new GatewayError('GW_ERR_TOKEN_MISSING', 'An access token is required (access_token=… or Authorization: Bearer …)');
    if (token.length > MAX_TOKEN_BYTES) throw new GatewayError('GW_ERR_TOKEN_INVALID', 'Access token is too large');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], clockTolerance: this.clockToleranceS }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new GatewayError('GW_ERR_TOKEN_EXPIRED', 'Access token expired');
      throw new GatewayError('GW_ERR_TOKEN_INVALID', "Access token was not signed with this gateway's access key, or is malformed");
    }
    if (payload.exp === undefined) throw new GatewayError('GW_ERR_TOKEN_INVALID', 'Access token has no exp');
    const audiences = list(payload.aud);
    const want = expectedPath.replace(/\/+$/, '');
    if (!audiences.some((a) => audPath(a) === want)) {
      throw new GatewayError('GW_ERR_TOKEN_INVALID', `Access token audience does not name ${want}`);
    }
    return payload;
  }

  /** A REST call's token, for the request path it was sent to (e.g. `/api/hubs/chat/:send`). */
  async verifyRest(token: string | undefined, requestPath: string): Promise<void> {
    await this.verify(token, requestPath);
  }

  /** A client's token for `/client/hubs/<hub>`: its user, roles and initial groups. */
  async verifyClient(token: string | undefined, hub: string): Promise<ClientGrant> {
    const payload = await this.verify(token, `/client/hubs/${hub}`);
    return {
      userId: typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : null,
      roles: list(payload.role),
      groups: list(payload['webpubsub.group']),
      expiresAt: payload.exp! * 1000,
      claims: payload,
    };
  }

  /** A client token as the SDK's getClientAccessToken makes it (`aud` = http(s) endpoint + client path). */
  async signClient(endpoint: string, hub: string, request: ClientTokenRequest = {}): Promise<string> {
    const base = new URL(endpoint);
    const aud = `${base.protocol.replace('ws', 'http')}//${base.host}/client/hubs/${hub}`;
    const now = Math.floor(Date.now() / 1000);
    const claims: JWTPayload = {};
    if (request.roles?.length) claims.role = [...request.roles];
    if (request.groups?.length) claims['webpubsub.group'] = [...request.groups];
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setAudience(aud)
      .setIssuedAt(now)
      .setExpirationTime(now + 60 * (request.minutes ?? 60));
    if (request.userId !== undefined) jwt.setSubject(request.userId);
    return jwt.sign(this.key);
  }
}
