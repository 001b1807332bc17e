/**
 * API keys (API_KEYS / API_KEYS_FILE). When any is configured, every route
 * but /health needs `Authorization: Bearer <key>`; the key's name is the
 * tenant, which scopes tasks (another tenant's task is a 404) and cache
 * entries. What spans tenants (the deployment's metrics, its worker
 * processes, /health's checks) needs a key named in API_ADMINS. Keys are compared in constant time (SHA-256 digests, every key
 * checked, no early exit) and never logged: logs name the tenant or the
 * reason, never the presented value.
 */
import { timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import type { ApiKey } from "../config";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { DASHBOARD_PATHS } from "./dashboard/routes";
import { errorResponse } from "./error-responses";
import { isStreamPath, type StreamTokens } from "./stream-tokens";

/**
 * Routes a client may call without a key: liveness probes of orchestrators have none, and the operator
 * console's page and assets hold no data (it asks for a key before it opens any stream).
 */
const PUBLIC_PATHS = new Set(["/health", ...DASHBOARD_PATHS]);

const digest = (value: string) => new Bun.CryptoHasher("sha256").update(value).digest();

export interface Keyring {
  /** True when keys are configured, i.e. auth is on. */
  readonly enabled: boolean;
  /** The tenant of a request's bearer key; undefined without a (valid) key. */
  tenantOf(request: Request): string | undefined;
}

/**
 * `streamTokens`: also accept `?access_token=` (api/stream-tokens.ts) on the
 * read-only streaming routes, for browsers, which cannot send the header there.
 */
export function createKeyring(keys: readonly ApiKey[], streamTokens?: StreamTokens): Keyring {
  const digests = keys.map((k) => ({ name: k.name, digest: digest(k.key) }));
  const enabled = digests.length > 0;
  const fromToken = (request: Request): string | undefined => {
    if (!streamTokens || !enabled) return undefined;
    const url = new URL(request.url);
    const token = url.searchParams.get("access_token");
    if (!token || !isStreamPath(request.method, url.pathname)) return undefined;
    const tenant = streamTokens.verify(token);
    // A token outlives nothing: its tenant must still have a key.
    return tenant !== undefined && digests.some((entry) => entry.name === tenant) ? tenant : undefined;
  };
  return {
    enabled,
    tenantOf(request) {
      const header = request.headers.get("authorization");
      const match = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
      if (!match) return fromToken(request);
      const presented = digest(match[1] as string);
      let tenant: string | undefined;
      for (const entry of digests) {
        // No early exit: the time taken never says which key, or how much of one, matched.
        if (timingSafeEqual(presented, entry.digest)) tenant = entry.name;
      }
      return tenant;
    },
  };
}

/** Refuses requests without a valid key (401, in the one error shape) before their body is read. */
export function authGuard(keyring: Keyring, logger: Logger) {
  const plugin = new Elysia({ name: "auth" });
  if (!keyring.enabled) return plugin;
  return plugin.onRequest(({ request }) => {
    const path = new URL(request.url).pathname;
    if (PUBLIC_PATHS.has(path)) return;
    if (keyring.tenantOf(request) !== undefined) return;
    const reason = request.headers.has("authorization")
      ? "invalid API key"
      : new URL(request.url).searchParams.has("access_token")
        ? "invalid or expired access_token"
        : "missing API key";
    logger.info({ route: `${request.method} ${path}`, reason }, "request rejected: unauthorized");
    const response = errorResponse(
      401,
      "UNAUTHORIZED",
      `${reason}: send Authorization: Bearer <key> (API_KEYS), or on a streaming route ?access_token= from GET /auth/stream-token`,
    );
    response.headers.set("www-authenticate", 'Bearer realm="ai-eventstream"');
    return response;
  });
}

/** Routes whose answer spans every tenant: the deployment's volume, its processes; and every /admin/ route. */
const ADMIN_PATHS = new Set(["/metrics", "/metrics/stream", "/metrics/prometheus", "/workers"]);
/** The operator's routes: they change (or show) how every tenant's tasks run, or train on every tenant's tasks. */
const OPERATOR_ROOTS = ["/admin", "/experiments", "/prompts", "/fine-tunes"] as const;

/** Whether a path is the operator's: /admin/*, prompt versions, experiments and fine-tunes (a root or below it). */
export function isOperatorPath(path: string): boolean {
  return OPERATOR_ROOTS.some(
    (root) => path.startsWith(root) && (path.length === root.length || path[root.length] === "/"),
  );
}

/**
 * With keys configured, the routes of ADMIN_PATHS answer only an admin key
 * (403 for another tenant's): one tenant must not read another's volume, or
 * the PIDs and hosts of the deployment. Runs after authGuard, so the key is valid.
 */
export function adminGuard(keyring: Keyring, isAdmin: (request: Request) => boolean, logger: Logger) {
  const plugin = new Elysia({ name: "admin" });
  if (!keyring.enabled) return plugin;
  return plugin.onRequest(({ request }) => {
    const path = new URL(request.url).pathname;
    if (!(ADMIN_PATHS.has(path) || isOperatorPath(path)) || isAdmin(request)) return;
    logger.info(
      { route: `${request.method} ${path}`, tenant: keyring.tenantOf(request) },
      "request refused: not an admin",
    );
    return errorResponse(403, "FORBIDDEN", `${path} spans every tenant: it needs a key named in API_ADMINS`);
  });
}

/** Whether an address is this host's: 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/**
 * Without API keys (local development) the operator console, /dashboard,
 * the /admin/ actions and /fine-tunes, answers only clients on this host, unless the
 * operator says otherwise (CONSOLE_ALLOW_REMOTE, e.g. behind a proxy that
 * authenticates). With keys, the admin guard decides.
 */
export function consoleGuard(deps: {
  keysOn: boolean;
  allowRemote: boolean;
  addressOf: (request: Request) => string | undefined;
  logger: Logger;
}) {
  const plugin = new Elysia({ name: "console-guard" });
  if (deps.keysOn || deps.allowRemote) return plugin;
  return plugin.onRequest(({ request }) => {
    // Every request passes here: a substring test spares POST /process a URL parse.
    const { url } = request;
    if (
      !url.includes("/dashboard") &&
      !url.includes("/admin/") &&
      !url.includes("/experiments") &&
      !url.includes("/prompts/") &&
      !url.includes("/fine-tunes")
    )
      return;
    const path = new URL(url).pathname;
    if (!(path === "/dashboard" || path.startsWith("/dashboard/") || isOperatorPath(path))) return;
    const address = deps.addressOf(request);
    // No address: the request did not come over TCP (in-process app.handle(), a Unix socket): it is local.
    if (address === undefined || isLoopback(address)) return;
    deps.logger.info(
      { route: `${request.method} ${path}`, client: address },
      "request refused: console off this host without API keys",
    );
    return errorResponse(
      403,
      "FORBIDDEN",
      `${path} answers only this host when no API_KEYS are set: set API_KEYS (and API_ADMINS), or CONSOLE_ALLOW_REMOTE=true`,
    );
  });
}

/** Who may read which tenant's tasks: GET /tasks and GET /events take a `tenant` parameter. */
export interface TenantScope {
  /** The configured tenants (API key names); empty when auth is off. */
  readonly tenants: readonly string[];
  tenantOf(request: Request): string | undefined;
  isAdmin(request: Request): boolean;
}

/** What a `tenant` parameter may hold: a key name (API_KEY_PAIR's), or `*` for every tenant. */
export const TENANT_PARAM_PATTERN = "^([a-zA-Z0-9_.-]{1,128}|\\*)$";

/**
 * The namespaces a request reads (a tenant's name, or undefined for the
 * open one, where tasks without a key go: all of them when auth is off, and
 * Kafka events without KAFKA_TENANT). Without `tenant`: the caller's own, or
 * with `whenAbsent: "all"` every namespace for an admin. `tenant=*` is every
 * namespace and `tenant=<name>` another tenant's: admins only (403); the
 * caller's own name is always allowed. Without keys every task is in the open namespace: `*` is that one,
 * and a tenant's name matches nothing.
 */
export function namespacesOf(
  scope: TenantScope,
  request: Request,
  requested: string | undefined,
  whenAbsent: "own" | "all",
): (string | undefined)[] {
  if (scope.tenants.length === 0) return requested === undefined || requested === "*" ? [undefined] : [];
  const own = scope.tenantOf(request);
  const everything = [undefined, ...scope.tenants];
  if (requested === undefined) return whenAbsent === "all" && scope.isAdmin(request) ? everything : [own];
  if (requested === own) return [own];
  if (!scope.isAdmin(request)) {
    throw new AppError("FORBIDDEN", "tenant: other tenants' tasks need a key named in API_ADMINS", { status: 403 });
  }
  if (requested === "*") return everything;
  // A name no key has now may still have tasks (a key removed): its streams are read like any other.
  return [requested];
}
