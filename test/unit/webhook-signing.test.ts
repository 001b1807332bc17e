/**
 * Webhook signatures (issue 15 §4), checked three ways: against the Standard
 * Webhooks specification's own example, by recomputing the HMAC here, and
 * with the `standardwebhooks` reference library a receiver would use.
 */
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { sign, signedHeaders, signingKey, tenantSecret } from "../../src/webhooks/signing";

const MASTER = "a-master-secret-of-at-least-32-characters!";

describe("webhook signatures", () => {
  test("the specification's example: secret, id, timestamp and body give its signature", () => {
    // From the Standard Webhooks specification (spec/standard-webhooks.md, "Signature scheme").
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    expect(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe(
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
  });

  test("a tenant's secret is whsec_ + base64(HMAC-SHA256(master, 'tenant:' + name)), one per tenant", () => {
    const expected = `whsec_${createHmac("sha256", MASTER).update("tenant:acme").digest("base64")}`;
    expect(tenantSecret(MASTER, "acme")).toBe(expected);
    expect(tenantSecret(MASTER, "other")).not.toBe(expected);
    expect(tenantSecret(MASTER, "")).toBe(`whsec_${createHmac("sha256", MASTER).update("tenant:").digest("base64")}`);
    expect(signingKey(expected)).toHaveLength(32);
  });

  test("the headers verify with an independent HMAC and with the standardwebhooks library", () => {
    const secret = tenantSecret(MASTER, "acme");
    const body = JSON.stringify({ type: "task.completed", timestamp: new Date().toISOString(), data: { x: 1 } });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = signedHeaders(secret, "msg_task-1", timestamp, body);
    expect(headers["webhook-id"]).toBe("msg_task-1");
    expect(headers["webhook-timestamp"]).toBe(String(timestamp));

    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const mac = createHmac("sha256", key).update(`msg_task-1.${timestamp}.${body}`).digest("base64");
    expect(headers["webhook-signature"]).toBe(`v1,${mac}`);

    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    // Another tenant's secret, or a changed body, does not verify.
    expect(() => new Webhook(tenantSecret(MASTER, "other")).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace("1", "2"), headers)).toThrow();
  });
});
