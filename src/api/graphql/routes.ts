/**
 * GraphQL at /graphql (GraphQL Yoga), beside the REST routes and behind the
 * same guards: the API key, the per-client rate limit and the body limit run
 * on /graphql as on every route (app.ts), and the resolvers scope tasks to
 * the key's tenant. What only an admin may read (metrics, workers) is
 * checked per field, since one request can ask for several.
 *
 * One GraphQL document can ask for much more than one REST request, so the
 * document is bounded before it runs (GraphQL Armor): tokens while parsing,
 * then depth, aliases and an estimated cost while validating. A refused
 * document is a 400 with `extensions.code` QUERY_TOO_COMPLEX and the limit in
 * the message. Batching (several operations in one request) is off, so the
 * rate limit counts operations.
 *
 * Subscriptions are served over Server-Sent Events (GraphQL over SSE,
 * "distinct connections" mode, which graphql-sse's client speaks): a POST or
 * GET with `Accept: text/event-stream`. Errors reach clients as GraphQL errors
 * whose `extensions.code` is the REST API's error code; anything unexpected
 * is logged and answered as INTERNAL, with no internal message.
 */
import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { Elysia } from "elysia";
import { GraphQLError } from "graphql";
import { createSchema, createYoga, type YogaLogger } from "graphql-yoga";
import { AppError } from "../../errors";
import type { Logger } from "../../log";
import { isRedisUnavailable } from "../../redis/client";
import { createResolvers, type GraphqlContext, type ResolverDeps } from "./resolvers";
import { typeDefs } from "./schema";

export const GRAPHQL_PATH = "/graphql";

/**
 * Bounds on one document. The schema's own types have no cycle (the deepest
 * field, tasks → edges → node → result → metadata → tokens_used, is 6 deep);
 * introspection's do (__Type.fields.type is a __Type), so the depth limit
 * applies to introspection too, at the depth of the standard introspection
 * query (15, what GraphiQL sends). The cost of a document selecting every
 * field of every root field once is about 21,500 on Armor's scale (since a
 * result shows its prompt version and experiment); twice that is refused
 * (two full `tasks` lists of 100 under aliases).
 */
export interface GraphqlLimits {
  /** Lexical tokens of the document. */
  maxTokens: number;
  maxDepth: number;
  maxAliases: number;
  /** GraphQL Armor's estimate: objects 2, scalars 1, times 1.5 per level of nesting. */
  maxCost: number;
}

export const DEFAULT_GRAPHQL_LIMITS: GraphqlLimits = { maxTokens: 1000, maxDepth: 15, maxAliases: 10, maxCost: 30_000 };

export interface GraphqlRoutesDeps extends ResolverDeps {
  tenantOf: (request: Request) => string | undefined;
  isAdmin: (request: Request) => boolean;
  logger: Logger;
  limits?: GraphqlLimits;
}

/** The code of a document refused by a limit: the client must ask for less, not retry. */
const TOO_COMPLEX = "QUERY_TOO_COMPLEX";

/**
 * Marks a limit's refusal with our code before Yoga gives validation errors its generic one, and drops the
 * "Syntax Error: " Armor puts before every refusal: the document is valid, only too large.
 */
const tooComplex = [
  (_: unknown, error: GraphQLError) => {
    (error.extensions as Record<string, unknown>).code = TOO_COMPLEX;
    error.message = error.message.replace(/^Syntax Error: /, "");
  },
];

export function graphqlRoutes(deps: GraphqlRoutesDeps) {
  const { logger, limits = DEFAULT_GRAPHQL_LIMITS } = deps;
  const log = logger.child({ component: "graphql" });

  /** AppError → its code and message; Redis away → SERVICE_UNAVAILABLE; anything else → INTERNAL, logged. */
  const maskError = (error: unknown): Error => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    // Parse, validation and variable errors (and the limits' refusals) are the client's, and say nothing of the
    // server; a variable's error carries the GraphQL error of its coercion as its original.
    if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) return error;
    const located = error instanceof GraphQLError ? error : undefined;
    const options = { nodes: located?.nodes ?? null, path: located?.path ?? null };
    if (original instanceof AppError) {
      if (original.status >= 500) log.warn({ code: original.code, err: original }, original.message);
      return new GraphQLError(original.message, {
        ...options,
        extensions: { code: original.code, ...(original.details === undefined ? {} : { details: original.details }) },
      });
    }
    if (isRedisUnavailable(original)) {
      log.warn({ err: original }, "Redis unavailable; answering SERVICE_UNAVAILABLE");
      return new GraphQLError("Redis is unavailable; retry shortly", {
        ...options,
        extensions: { code: "SERVICE_UNAVAILABLE", details: { service: "Redis" } },
      });
    }
    log.error({ err: original, path: located?.path }, "unhandled error in a GraphQL resolver");
    return new GraphQLError("internal error; the server logged the details", {
      ...options,
      extensions: { code: "INTERNAL" },
    });
  };

  const yogaLogger: YogaLogger = {
    debug: (...args: unknown[]) => log.debug({ args }, "yoga"),
    info: (...args: unknown[]) => log.info({ args }, "yoga"),
    warn: (...args: unknown[]) => log.warn({ args }, "yoga"),
    error: (...args: unknown[]) => log.error({ args }, "yoga"),
  };

  const yoga = createYoga<GraphqlContext>({
    schema: createSchema<GraphqlContext>({ typeDefs, resolvers: createResolvers(deps) }),
    graphqlEndpoint: GRAPHQL_PATH,
    // The REST API sends no CORS headers either; a browser app on another origin goes through its own backend.
    cors: false,
    landingPage: false,
    graphiql: { title: "AI-EventStream GraphQL" },
    logging: yogaLogger,
    maskedErrors: { maskError },
    plugins: [
      maxTokensPlugin({ n: limits.maxTokens, onReject: tooComplex }),
      maxDepthPlugin({ n: limits.maxDepth, ignoreIntrospection: false, flattenFragments: true, onReject: tooComplex }),
      maxAliasesPlugin({ n: limits.maxAliases, onReject: tooComplex }),
      costLimitPlugin({ maxCost: limits.maxCost, ignoreIntrospection: true, onReject: tooComplex }),
    ],
  });

  const contextOf = (request: Request): GraphqlContext => ({
    tenant: deps.tenantOf(request),
    isAdmin: deps.isAdmin(request),
  });

  return (
    new Elysia({ name: "graphql" })
      // GraphiQL for a browser, queries in the URL, and subscriptions with Accept: text/event-stream.
      .get(GRAPHQL_PATH, ({ request }) => yoga.fetch(request, contextOf(request)), { detail: { hide: true } })
      .post(
        GRAPHQL_PATH,
        ({ body, request }) => {
          // The body was read by the app's parser, with its size limit and its 400 for invalid JSON; Yoga reads
          // it again from a request of its own (a GraphQL request is a few hundred bytes).
          const parsed = new Request(request.url, {
            method: "POST",
            headers: request.headers,
            body: JSON.stringify(body),
            signal: request.signal,
          });
          return yoga.fetch(parsed, contextOf(request));
        },
        // Hidden from the OpenAPI document: GraphQL describes itself (introspection), and REST fuzzers cannot speak it.
        { detail: { hide: true } },
      )
  );
}
