/**
 * What kind of address an IP is, for the SSRF rules of callback URLs (issue
 * 15 §4). A webhook is a request the server makes on a client's behalf: to a
 * loopback, private or link-local address it would reach the server's own
 * services (Redis, the metadata endpoint at 169.254.169.254) with the
 * server's network position. So every address a callback host resolves to
 * is classified, and only `public` ones are allowed unless the operator says
 * otherwise (WEBHOOK_ALLOW_PRIVATE).
 *
 * IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, the
 * deprecated compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
 * classified by that IPv4 address: ::ffff:127.0.0.1 is loopback, whatever
 * its spelling. Pure: no I/O, unit tested.
 */
import { isIPv4, isIPv6 } from "node:net";

export type AddressClass =
  | "public"
  /** 0.0.0.0/8, ::; connecting to it reaches the local host on Linux. */
  | "unspecified"
  | "loopback"
  /** RFC 1918, and IPv6 site-local fec0::/10. */
  | "private"
  /** 169.254/16, fe80::/10. */
  | "link_local"
  /** fc00::/7. */
  | "unique_local"
  /** 100.64/10, carrier-grade NAT. */
  | "shared"
  | "multicast"
  | "broadcast"
  /** Documentation, benchmarking, IETF and future-use ranges: never a real receiver. */
  | "reserved";

/** Classes no setting allows: never a single host one could mean to call. */
export const NEVER_ALLOWED: ReadonlySet<AddressClass> = new Set(["unspecified", "multicast", "broadcast"]);

/** Whether a callback may be sent to an address of this class. */
export function isAllowed(kind: AddressClass, allowPrivate: boolean): boolean {
  if (kind === "public") return true;
  return allowPrivate && !NEVER_ALLOWED.has(kind);
}

type Range4 = readonly [base: number, prefix: number, kind: AddressClass];

/** Most specific first: the first range that contains the address decides. */
const V4_RANGES: readonly Range4[] = [
  [ip4("255.255.255.255"), 32, "broadcast"],
  [ip4("0.0.0.0"), 8, "unspecified"],
  [ip4("10.0.0.0"), 8, "private"],
  [ip4("100.64.0.0"), 10, "shared"],
  [ip4("127.0.0.0"), 8, "loopback"],
  [ip4("169.254.0.0"), 16, "link_local"],
  [ip4("172.16.0.0"), 12, "private"],
  [ip4("192.0.0.0"), 24, "reserved"],
  [ip4("192.0.2.0"), 24, "reserved"],
  [ip4("192.88.99.0"), 24, "reserved"],
  [ip4("192.168.0.0"), 16, "private"],
  [ip4("198.18.0.0"), 15, "reserved"],
  [ip4("198.51.100.0"), 24, "reserved"],
  [ip4("203.0.113.0"), 24, "reserved"],
  [ip4("224.0.0.0"), 4, "multicast"],
  [ip4("240.0.0.0"), 4, "reserved"],
];

/** A dotted quad as an unsigned 32-bit number. */
function ip4(address: string): number {
  return address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

function classify4(n: number): AddressClass {
  for (const [base, prefix, kind] of V4_RANGES) {
    const size = 2 ** (32 - prefix);
    if (n >= base && n < base + size) return kind;
  }
  return "public";
}

/** An IPv6 address as its eight 16-bit groups; `address` is valid IPv6 (isIPv6), possibly with a zone. */
function groups6(address: string): number[] {
  let text = address.split("%")[0] as string;
  const embedded: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    // A trailing dotted quad is the last two groups.
    const n = ip4(last);
    embedded.push(Math.floor(n / 65536), n % 65536);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const gap = text.indexOf("::");
  if (gap < 0) return [...parse(text), ...embedded];
  const front = parse(text.slice(0, gap));
  const back = [...parse(text.slice(gap + 2)), ...embedded];
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

function classify6(g: readonly number[]): { kind: AddressClass; embedded?: string } {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const v4 = (hi: number, lo: number) => {
    const n = hi * 65536 + lo;
    const dotted = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
    return { kind: classify4(n), embedded: dotted };
  };
  const firstSix = [g0, g1, g2, g3, g4, g5];
  if (firstSix.every((x) => x === 0)) {
    if (g6 === 0 && g7 === 0) return { kind: "unspecified" };
    if (g6 === 0 && g7 === 1) return { kind: "loopback" };
    return v4(g6, g7); // ::a.b.c.d, the deprecated IPv4-compatible form
  }
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return v4(g6, g7); // ::ffff:a.b.c.d
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return v4(g6, g7); // ::ffff:0:a.b.c.d
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return v4(g6, g7); // NAT64
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return { kind: "reserved" }; // local-use NAT64
  if (g0 === 0x2002) return v4(g1, g2); // 6to4
  if ((g0 & 0xfe00) === 0xfc00) return { kind: "unique_local" };
  if ((g0 & 0xffc0) === 0xfe80) return { kind: "link_local" };
  if ((g0 & 0xffc0) === 0xfec0) return { kind: "private" }; // site-local, deprecated
  if ((g0 & 0xff00) === 0xff00) return { kind: "multicast" };
  if (g0 === 0x2001 && g1 === 0x0db8) return { kind: "reserved" }; // documentation
  if (g0 === 0x2001 && g1 < 0x0200) return { kind: "reserved" }; // IETF protocol assignments, Teredo
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return { kind: "reserved" }; // discard-only
  if (g0 === 0x3fff && g1 < 0x1000) return { kind: "reserved" }; // documentation (RFC 9637)
  return { kind: "public" };
}

export interface Classified {
  kind: AddressClass;
  /** The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4), when it decided the class. */
  embedded?: string;
}

/** The class of an IP address (IPv4 dotted quad, or IPv6 with or without brackets); undefined when it is not one. */
export function classifyAddress(address: string): Classified | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  if (isIPv4(bare)) return { kind: classify4(ip4(bare)) };
  if (isIPv6(bare)) return classify6(groups6(bare));
  return undefined;
}

/** A sentence for a refused address, as a client reads it in a 422. */
export function describeRefusal(address: string, classified: Classified): string {
  const via = classified.embedded ? ` (it carries the IPv4 address ${classified.embedded})` : "";
  const kind = classified.kind.replace("_", "-");
  const article = /^[aeiou]/.test(kind) ? "an" : "a";
  return `${address} is ${article} ${kind} address${via}; webhooks go to public addresses only`;
}
