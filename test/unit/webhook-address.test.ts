/**
 * The SSRF rules of callback URLs (issue 15 §4): which addresses a webhook
 * may go to, in IPv4, IPv6 and the IPv6 forms that carry an IPv4 address,
 * and the URL checks that need no DNS.
 */
import { describe, expect, test } from "bun:test";
import { classifyAddress, isAllowed } from "../../src/webhooks/address";
import { callbackUrlProblem, resolveCallback } from "../../src/webhooks/callback-url";

const kindOf = (address: string): string | undefined => classifyAddress(address)?.kind;

describe("address classifier", () => {
  test.each([
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["100.64.0.1", "shared"],
    ["100.127.255.254", "shared"],
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["169.254.169.254", "link_local"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["192.0.2.10", "reserved"],
    ["198.18.0.1", "reserved"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "broadcast"],
  ])("IPv4 %s is %s", (address, kind) => {
    expect(kindOf(address)).toBe(kind);
  });

  test.each([
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255", // just below CGNAT
    "100.128.0.0", // just above it
    "172.15.255.255", // just below 172.16/12
    "172.32.0.0", // just above it
    "169.253.255.255",
    "192.169.0.1",
    "9.255.255.255",
    "11.0.0.0",
    "223.255.255.255",
  ])("IPv4 %s is public", (address) => {
    expect(kindOf(address)).toBe("public");
  });

  test.each([
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["fe80::1", "link_local"],
    ["fe80::1%eth0", "link_local"],
    ["febf:ffff::1", "link_local"],
    ["fc00::1", "unique_local"],
    ["fd12:3456:789a::1", "unique_local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"], // Teredo
    ["100::1", "reserved"],
  ])("IPv6 %s is %s", (address, kind) => {
    expect(kindOf(address)).toBe(kind);
  });

  test.each(["2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e"])(
    "IPv6 %s is public",
    (address) => {
      expect(kindOf(address)).toBe("public");
    },
  );

  test.each([
    ["::ffff:127.0.0.1", "loopback", "127.0.0.1"],
    ["::ffff:7f00:1", "loopback", "127.0.0.1"],
    ["[::ffff:7f00:1]", "loopback", "127.0.0.1"],
    ["::ffff:169.254.169.254", "link_local", "169.254.169.254"],
    ["::ffff:a9fe:a9fe", "link_local", "169.254.169.254"],
    ["0:0:0:0:0:ffff:10.1.2.3", "private", "10.1.2.3"],
    ["::ffff:0:192.168.0.1", "private", "192.168.0.1"],
    ["::127.0.0.1", "loopback", "127.0.0.1"],
    ["64:ff9b::10.0.0.1", "private", "10.0.0.1"],
    ["64:ff9b::a9fe:a9fe", "link_local", "169.254.169.254"],
    ["2002:7f00:1::", "loopback", "127.0.0.1"],
    ["2002:a9fe:a9fe::1", "link_local", "169.254.169.254"],
    ["::ffff:8.8.8.8", "public", "8.8.8.8"],
  ])("IPv6 %s carries IPv4 %s: %s", (address, kind, embedded) => {
    expect(classifyAddress(address)).toEqual({ kind, embedded } as never);
  });

  test("names and garbage are not addresses", () => {
    for (const text of ["example.com", "localhost", "", "1.2.3", "::g", "1.2.3.4.5"]) {
      expect(classifyAddress(text)).toBeUndefined();
    }
  });

  test("WEBHOOK_ALLOW_PRIVATE opens private kinds, never unspecified, multicast or broadcast", () => {
    for (const kind of ["loopback", "private", "link_local", "unique_local", "shared", "reserved"] as const) {
      expect(isAllowed(kind, false)).toBe(false);
      expect(isAllowed(kind, true)).toBe(true);
    }
    for (const kind of ["unspecified", "multicast", "broadcast"] as const) expect(isAllowed(kind, true)).toBe(false);
    expect(isAllowed("public", false)).toBe(true);
  });
});

describe("callback URL rules without DNS", () => {
  const strict = { allowPrivate: false };
  const reasonOf = (url: string, rules = strict) => {
    const checked = callbackUrlProblem(url, rules);
    return checked.ok ? undefined : checked.reason;
  };

  test("http and https URLs to public hosts pass, normalised", () => {
    const checked = callbackUrlProblem("HTTPS://Example.COM:443/hook?x=1", strict);
    expect(checked.ok && checked.url.href).toBe("https://example.com/hook?x=1");
    expect(reasonOf("http://8.8.8.8:8080/cb")).toBeUndefined();
  });

  test.each([
    ["ftp://example.com/x", "scheme ftp"],
    ["file:///etc/passwd", "scheme file"],
    ["javascript:alert(1)", "scheme javascript"],
    ["https://user:pw@example.com/", "credentials"],
    ["https://user@example.com/", "credentials"],
    ["not a url", "not an absolute URL"],
    ["/relative/path", "not an absolute URL"],
    [`https://example.com/${"a".repeat(2048)}`, "at most 2048"],
  ])("%s is refused: %s", (url, reason) => {
    expect(reasonOf(url)).toContain(reason);
  });

  test.each([
    "http://127.0.0.1:9000/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00::1]/",
    "http://10.0.0.8/",
    "http://100.100.100.100/",
    "http://0.0.0.0:8000/",
    // Numeric spellings of 127.0.0.1 that the URL parser normalises.
    "http://2130706433/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://017700000001/",
    "http://localhost:8000/",
    "http://api.localhost/",
  ])("%s is refused without WEBHOOK_ALLOW_PRIVATE", (url) => {
    expect(reasonOf(url)).toMatch(/address|loopback name/);
  });

  test("WEBHOOK_ALLOW_PRIVATE lets loopback and link-local through, never 0.0.0.0 or multicast", () => {
    const open = { allowPrivate: true };
    expect(reasonOf("http://127.0.0.1:9000/", open)).toBeUndefined();
    expect(reasonOf("http://localhost:9000/", open)).toBeUndefined();
    expect(reasonOf("http://169.254.169.254/", open)).toBeUndefined();
    expect(reasonOf("http://0.0.0.0:9000/", open)).toContain("unspecified");
    expect(reasonOf("http://224.0.0.1/", open)).toContain("multicast");
  });
});

describe("callback URL rules after DNS", () => {
  const strict = { allowPrivate: false };
  const answering =
    (...addresses: string[]) =>
    async () =>
      addresses;

  test("every resolved address must be public: one private answer among public ones refuses the URL", async () => {
    const ok = await resolveCallback("https://hooks.example.com/x", strict, answering("93.184.216.34", "2606:2800::1"));
    expect(ok.addresses).toEqual(["93.184.216.34", "2606:2800::1"]);
    await expect(
      resolveCallback("https://hooks.example.com/x", strict, answering("93.184.216.34", "10.0.0.7")),
    ).rejects.toMatchObject({
      status: 422,
      code: "CALLBACK_URL_REFUSED",
      details: { field: "callback_url", reason: expect.stringContaining("10.0.0.7 is a private address") },
    });
    await expect(
      resolveCallback("https://rebind.example/x", strict, answering("::ffff:169.254.169.254")),
    ).rejects.toMatchObject({ details: { reason: expect.stringContaining("169.254.169.254") } });
  });

  test("a name that does not resolve is refused, naming the host", async () => {
    const failing = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.invalid"), { code: "ENOTFOUND" });
    };
    await expect(resolveCallback("https://nowhere.invalid/", strict, failing)).rejects.toMatchObject({
      code: "CALLBACK_URL_REFUSED",
      details: { reason: expect.stringContaining("nowhere.invalid does not resolve") },
    });
  });

  test("the system resolver's answer for localhost is loopback", async () => {
    await expect(resolveCallback("http://localhost:1/", strict)).rejects.toMatchObject({
      code: "CALLBACK_URL_REFUSED",
    });
    const open = await resolveCallback("http://localhost:1/", { allowPrivate: true });
    expect(open.addresses.every((address) => classifyAddress(address)?.kind === "loopback")).toBe(true);
  });
});
