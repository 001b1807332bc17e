/**
 * The rules a callback_url must pass (issue 15 §4), in two steps:
 *
 *   - `callbackUrlProblem`, without I/O: http or https only, no credentials in
 *     the URL, at most 2048 characters, and a host that is not an address
 *     (or `localhost` name) of a refused kind. A Kafka consumer thread checks
 *     events with it, and dead-letters what fails.
 *   - `resolveCallback`: the same, then every address the host resolves to
 *     (A and AAAA, through the system resolver as fetch uses it) must be
 *     allowed. POST /process runs it before accepting, and the deliverer
 *     again before each attempt, since DNS answers change.
 *
 * The WHATWG URL parser normalises the host first, so the numeric spellings
 * of an IPv4 address (2130706433, 0x7f.1, 127.1) are all 127.0.0.1 here.
 */
import { lookup } from "node:dns/promises";
import { AppError, errorMessage } from "../errors";
import { CALLBACK_URL_MAX_LENGTH } from "../task/contract";
import { classifyAddress, describeRefusal, isAllowed } from "./address";

/** How long a callback host's name may take to resolve. */
const DNS_TIMEOUT_MS = 5000;

/** 422 CALLBACK_URL_REFUSED: the field, and why. */
export class CallbackUrlRefused extends AppError {
  constructor(readonly reason: string) {
    super("CALLBACK_URL_REFUSED", `callback_url: ${reason}`, {
      status: 422,
      details: { field: "callback_url", reason },
    });
    this.name = "CallbackUrlRefused";
  }
}

/** Why a callback_url is refused when WEBHOOK_SECRET is unset: the API's 422 and the Kafka DLQ's detail. */
export const WEBHOOKS_DISABLED_REASON =
  "webhooks are disabled on this server: its operator must set WEBHOOK_SECRET to enable callback_url";

/** 422 WEBHOOKS_DISABLED: a callback_url sent to a server without WEBHOOK_SECRET. */
export class WebhooksDisabled extends AppError {
  constructor() {
    super("WEBHOOKS_DISABLED", `callback_url: ${WEBHOOKS_DISABLED_REASON}`, {
      status: 422,
      details: { field: "callback_url" },
    });
    this.name = "WebhooksDisabled";
  }
}

export interface CallbackRules {
  /** WEBHOOK_ALLOW_PRIVATE: loopback, private, link-local, unique-local and CGNAT addresses are allowed. */
  allowPrivate: boolean;
}

/** The URL, normalised, or why it is refused; no I/O. */
export function callbackUrlProblem(
  raw: string,
  rules: CallbackRules,
): { ok: true; url: URL } | { ok: false; reason: string } {
  if (raw.length > CALLBACK_URL_MAX_LENGTH) {
    return { ok: false, reason: `is ${raw.length} characters; at most ${CALLBACK_URL_MAX_LENGTH}` };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "is not an absolute URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, reason: `scheme ${url.protocol.replace(/:$/, "")} is not allowed; use http or https` };
  }
  if (url.username !== "" || url.password !== "") {
    return { ok: false, reason: "must not carry credentials (user:password@); the signature authenticates us" };
  }
  if (url.hostname === "") return { ok: false, reason: "has no host" };
  const host = url.hostname.toLowerCase();
  const classified = classifyAddress(host);
  if (classified && !isAllowed(classified.kind, rules.allowPrivate)) {
    return { ok: false, reason: describeRefusal(host, classified) };
  }
  // RFC 6761: localhost names are loopback, whatever a resolver says.
  if (!classified && (host === "localhost" || host.endsWith(".localhost")) && !rules.allowPrivate) {
    return { ok: false, reason: `${host} is a loopback name; webhooks go to public addresses only` };
  }
  return { ok: true, url };
}

export type Lookup = (hostname: string) => Promise<readonly string[]>;

/** Every address the system resolver gives for a name (A and AAAA), as fetch would connect to one of them. */
export const systemLookup: Lookup = async (hostname) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no DNS answer within ${DNS_TIMEOUT_MS} ms`)), DNS_TIMEOUT_MS);
  });
  try {
    const answers = await Promise.race([lookup(hostname, { all: true, verbatim: true }), timeout]);
    return answers.map((answer) => answer.address);
  } finally {
    clearTimeout(timer);
  }
};

export interface ResolvedCallback {
  url: URL;
  /** The checked addresses; the first is the one to connect to. */
  addresses: readonly string[];
}

/**
 * The URL and the addresses its host resolves to, all of them allowed; throws
 * CallbackUrlRefused otherwise (a name that does not resolve included).
 */
export async function resolveCallback(
  raw: string,
  rules: CallbackRules,
  resolve: Lookup = systemLookup,
): Promise<ResolvedCallback> {
  const checked = callbackUrlProblem(raw, rules);
  if (!checked.ok) throw new CallbackUrlRefused(checked.reason);
  const { url } = checked;
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  if (classifyAddress(host)) return { url, addresses: [host] };
  let addresses: readonly string[];
  try {
    addresses = await resolve(host);
  } catch (error) {
    throw new CallbackUrlRefused(`host ${host} does not resolve: ${errorMessage(error)}`);
  }
  if (addresses.length === 0) throw new CallbackUrlRefused(`host ${host} resolves to no address`);
  for (const address of addresses) {
    const classified = classifyAddress(address);
    if (!classified || !isAllowed(classified.kind, rules.allowPrivate)) {
      const why = classified ? describeRefusal(address, classified) : `${address} is not an IP address`;
      throw new CallbackUrlRefused(`host ${host} resolves to ${why}`);
    }
  }
  return { url, addresses };
}

/** A callback URL as logs show it: scheme, host and path; its query may carry a receiver's token. */
export function loggableUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "[unparseable url]";
  }
}
