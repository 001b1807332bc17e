/**
 * Short-lived tokens for the push channels a browser opens. EventSource and
 * the browser's WebSocket cannot send an Authorization header, and an API key
 * in a URL ends up in proxy logs and browser history for as long as the key
 * lives. So a client trades its key for a token (`GET /auth/stream-token`,
 * with the Bearer key) and puts that in `?access_token=`; the token names its
 * tenant, expires after STREAM_TOKEN_TTL_SECONDS, and opens only the read-only
 * streaming routes (STREAM_PATHS), never POST /process or the admin routes.
 *
 * Format: `st1.{tenant, base64url}.{expiry, epoch s}.{HMAC-SHA256, base64url}`.
 * The HMAC key is 32 random bytes kept in Redis (`auth:stream-token-key`,
 * created once with SET NX), so a token from one API process is good on
 * every other; deleting the key revokes every token at once (on restart).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { COMMON_ERRORS, errorResponses } from "./error-responses";

export const STREAM_TOKEN_KEY = "auth:stream-token-key";

/**
 * Routes a stream token opens: GET only, read-only, the caller's own events (and, for an admin's token, the
 * deployment's metrics: /metrics/stream stays behind the admin guard, which reads the token's tenant).
 */
const STREAM_PATHS = [/^\/events$/, /^\/metrics\/stream$/, /^\/ws$/, /^\/task\/[^/]+\/(events|stream)$/];

export function isStreamPath(method: string, path: string): boolean {
  return method === "GET" && STREAM_PATHS.some((pattern) => pattern.test(path));
}

export interface StreamTokens {
  issue(tenant: string, now?: number): { token: string; expires_at: string };
  /** The tenant a valid, unexpired token names; undefined otherwise. */
  verify(token: string, now?: number): string | undefined;
}

export function createStreamTokens(key: Buffer, ttlSeconds: number): StreamTokens {
  const sign = (payload: string) => createHmac("sha256", key).update(payload).digest();
  return {
    issue(tenant, now = Date.now()) {
      const expiry = Math.floor(now / 1000) + ttlSeconds;
      const payload = `st1.${Buffer.from(tenant).toString("base64url")}.${expiry}`;
      return {
        token: `${payload}.${sign(payload).toString("base64url")}`,
        expires_at: new Date(expiry * 1000).toISOString(),
      };
    },
    verify(token, now = Date.now()) {
      const parts = token.split(".");
      if (parts.length !== 4 || parts[0] !== "st1") return undefined;
      const [, tenant64, expiry, signature] = parts as [string, string, string, string];
      const expected = sign(`st1.${tenant64}.${expiry}`);
      const presented = Buffer.from(signature, "base64url");
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined;
      if (!/^\d{1,12}$/.test(expiry) || Number(expiry) * 1000 <= now) return undefined;
      return Buffer.from(tenant64, "base64url").toString();
    },
  };
}

/** The deployment's signing key: made by the first API process, read by the others. */
export async function loadStreamTokenKey(redis: Redis): Promise<Buffer> {
  await redis.set(STREAM_TOKEN_KEY, randomBytes(32).toString("base64"), "NX");
  const value = await redis.get(STREAM_TOKEN_KEY);
  if (!value) throw new Error(`${STREAM_TOKEN_KEY} vanished right after it was set`);
  return Buffer.from(value, "base64");
}

/** GET /auth/stream-token: the caller's key traded for a token to put in a streaming URL. */
export function streamTokenRoutes(deps: { tokens: StreamTokens; tenantOf: (request: Request) => string | undefined }) {
  return new Elysia({ name: "stream-tokens" }).get(
    "/auth/stream-token",
    ({ request, set }) => {
      // A token is a credential: no cache may keep it.
      set.headers["cache-control"] = "no-store";
      return deps.tokens.issue(deps.tenantOf(request) ?? "");
    },
    {
      response: {
        200: t.Object({
          token: t.String({
            description:
              "put it in ?access_token= of /events, /task/{id}/events, /task/{id}/stream, /ws or (admins) /metrics/stream",
          }),
          expires_at: t.String({ format: "date-time" }),
        }),
        ...errorResponses(...COMMON_ERRORS),
      },
      detail: {
        summary: "A short-lived token for EventSource and browser WebSockets",
        description:
          "Browsers cannot send Authorization on an EventSource or a WebSocket. Call this with your Bearer key, then open the stream with `?access_token=<token>`. The token opens only the read-only streaming routes of your tenant and expires after STREAM_TOKEN_TTL_SECONDS. Without API keys configured, streams need no token (this still answers one).",
        tags: ["events"],
      },
    },
  );
}
