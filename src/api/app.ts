/** The Elysia application: route groups, the error shape and the OpenAPI document. */
import { swagger } from "@elysiajs/swagger";
import { Elysia } from "elysia";
import type { HealthProbe } from "../health";
import type { Logger } from "../log";
import { APP_VERSION } from "../version";
import { errorHandler } from "./errors";
import { healthRoutes } from "./health";

export interface AppDeps {
  logger: Logger;
  probes: readonly HealthProbe[];
  roles: readonly string[];
  startedAt?: number;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
}

/** 1 MiB: a maximal task (10,000 characters, 4 bytes each in UTF-8) is 40 KB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export function createApp(deps: AppDeps) {
  return new Elysia({
    name: "ai-eventstream",
    serve: { maxRequestBodySize: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES },
  })
    .use(errorHandler(deps.logger))
    .use(
      swagger({
        path: "/swagger",
        documentation: {
          info: {
            title: "AI-EventStream",
            version: APP_VERSION,
            description: "A Bun-native, high-throughput AI stream processor.",
          },
          tags: [{ name: "operations", description: "Health, metrics and workers" }],
        },
      }),
    )
    .use(healthRoutes({ probes: deps.probes, roles: deps.roles, startedAt: deps.startedAt ?? Date.now() }));
}

export type App = ReturnType<typeof createApp>;
