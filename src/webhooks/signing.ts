/**
 * Webhook signatures as Standard Webhooks specify them
 * (https://www.standardwebhooks.com/): the headers `webhook-id` (one per
 * delivery, the same on every retry, so a receiver can drop duplicates),
 * `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`
 * = `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)), where the
 * key is the base64-decoded part of a `whsec_...` secret.
 *
 * One variable holds a master secret (WEBHOOK_SECRET); each tenant signs with
 * its own secret derived from it, `whsec_` + base64(HMAC-SHA256(master,
 * "tenant:" + name)), so a tenant can verify its webhooks and cannot forge
 * another's, and no per-tenant secret needs storing. Rotating the master
 * rotates them all.
 */
import { createHmac } from "node:crypto";

export const SECRET_PREFIX = "whsec_";

/** A tenant's signing secret (tenant "" when auth is off). */
export function tenantSecret(master: string, tenant: string): string {
  return SECRET_PREFIX + createHmac("sha256", master).update(`tenant:${tenant}`).digest("base64");
}

/** The HMAC key of a `whsec_` secret: its base64 part, decoded. */
export function signingKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new TypeError("a webhook secret starts with whsec_");
  return Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
}

/** The `webhook-signature` value of a body. */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", signingKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The three Standard Webhooks headers of one attempt. */
export function signedHeaders(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": sign(secret, id, timestampSeconds, body),
  };
}

/** Tenant secrets of one master, derived once per tenant. */
export function createSecrets(master: string): (tenant: string) => string {
  const derived = new Map<string, string>();
  return (tenant) => {
    let secret = derived.get(tenant);
    if (secret === undefined) {
      secret = tenantSecret(master, tenant);
      derived.set(tenant, secret);
    }
    return secret;
  };
}
