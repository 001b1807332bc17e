import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { createStreamTokens, isStreamPath } from "../../src/api/stream-tokens";

const tokens = createStreamTokens(randomBytes(32), 60);

describe("stream tokens", () => {
  test("a token names its tenant until it expires", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    const { token, expires_at } = tokens.issue("acme", now);
    expect(expires_at).toBe("2026-12-01T12:01:00.000Z");
    expect(tokens.verify(token, now + 59_000)).toBe("acme");
    expect(tokens.verify(token, now + 60_000)).toBeUndefined();
  });

  test("a token with another tenant, another expiry or another key's signature is refused", () => {
    const { token } = tokens.issue("acme");
    const [version, , expiry, signature] = token.split(".");
    const otherTenant = `${version}.${Buffer.from("evil").toString("base64url")}.${expiry}.${signature}`;
    const longer = `${version}.${token.split(".")[1]}.${Number(expiry) + 3600}.${signature}`;
    expect(tokens.verify(otherTenant)).toBeUndefined();
    expect(tokens.verify(longer)).toBeUndefined();
    expect(createStreamTokens(randomBytes(32), 60).verify(token)).toBeUndefined();
    for (const junk of ["", "st1", "st1.a.b", "st1.a.1.b.c", "x.y.z.w"]) expect(tokens.verify(junk)).toBeUndefined();
  });

  test("tokens open only the read-only streaming routes", () => {
    expect(isStreamPath("GET", "/events")).toBe(true);
    expect(isStreamPath("GET", "/ws")).toBe(true);
    expect(isStreamPath("GET", "/task/abc/events")).toBe(true);
    expect(isStreamPath("GET", "/task/abc/stream")).toBe(true);
    expect(isStreamPath("POST", "/process")).toBe(false);
    expect(isStreamPath("GET", "/task/abc")).toBe(false);
    expect(isStreamPath("GET", "/metrics")).toBe(false);
    expect(isStreamPath("DELETE", "/events")).toBe(false);
  });
});
