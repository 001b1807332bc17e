/**
 * What a GraphQL client sees of a failure inside the server: an AppError's
 * code and message, Redis away as SERVICE_UNAVAILABLE, and anything else as
 * INTERNAL with a generic message, never the internal one (which is logged).
 */
import { describe, expect, test } from "bun:test";
import { graphqlRoutes } from "../../src/api/graphql/routes";
import { AppError } from "../../src/errors";
import { createLogger } from "../../src/log";

const lines: string[] = [];
const logger = createLogger({ level: "debug", destination: { write: (line: string) => void lines.push(line) } });

function appFailingWith(error: unknown) {
  const fail = async () => {
    throw error;
  };
  return graphqlRoutes({
    redis: {} as never,
    store: { get: fail } as never,
    hub: {} as never,
    accept: fail,
    resultTtlSeconds: 60,
    queues: [],
    tenantOf: () => undefined,
    isAdmin: () => true,
    logger,
  });
}

async function ask(app: ReturnType<typeof appFailingWith>, query: string) {
  const response = await app.handle(
    new Request("http://localhost/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    }),
  );
  return (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
}

describe("GraphQL errors", () => {
  test("an unexpected error is INTERNAL with a generic message; the details go to the log only", async () => {
    const body = await ask(
      appFailingWith(new TypeError("secret detail at 10.0.0.7:6379")),
      `{ task(id: "a") { status } }`,
    );
    expect(body.errors?.map((e) => e.extensions?.code)).toEqual(["INTERNAL"]);
    expect(JSON.stringify(body)).not.toContain("secret");
    expect(lines.join("\n")).toContain("secret detail at 10.0.0.7:6379");
  });

  test("an AppError keeps its code and message, as REST answers it", async () => {
    const body = await ask(
      appFailingWith(new AppError("TOO_MANY_PENDING_TASKS", "100 tasks of this API key are queued", { status: 429 })),
      `mutation { process(input: { text: "x" }) { task_id } }`,
    );
    expect(body.errors?.[0]).toMatchObject({
      message: "100 tasks of this API key are queued",
      extensions: { code: "TOO_MANY_PENDING_TASKS" },
    });
  });

  test("Redis away is SERVICE_UNAVAILABLE, without the connection's details", async () => {
    const body = await ask(
      appFailingWith(Object.assign(new Error("connect ECONNREFUSED 10.0.0.7:6379"), { code: "ECONNREFUSED" })),
      `{ task(id: "a") { status } }`,
    );
    expect(body.errors?.map((e) => e.extensions?.code)).toEqual(["SERVICE_UNAVAILABLE"]);
    expect(JSON.stringify(body)).not.toContain("10.0.0.7");
  });
});
