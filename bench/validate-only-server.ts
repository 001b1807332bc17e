/**
 * The reference for POST /process throughput: the same Elysia app shell
 * (error handler, body-size and content-type checks, the same TypeBox body
 * schema) with a /process route that only validates and answers 202, with
 * no Redis. Accepting a task can only be slower; the ratio of the two, in
 * the same run, is what the pipeline's acceptance path costs.
 *
 *   PORT=8001 bun bench/validate-only-server.ts
 */
import { createApp } from "../src/api/app";
import { createLogger } from "../src/log";
import { ProcessBody } from "../src/task/contract";

const port = Number(process.env.PORT ?? 8001);
let accepted = 0;
const app = createApp({ logger: createLogger({ level: "warn" }), probes: [], roles: ["api"] }).post(
  "/process",
  // createApp is typed as any Elysia: the context's type is stated here.
  ({ set }: { [key: string]: unknown; set?: { status?: number | string } }) => {
    if (!set) throw new Error("Elysia gives every handler its `set`");
    set.status = 202;
    accepted++;
    return { task_id: String(accepted), status: "PENDING" as const, message: "validated only" };
  },
  { body: ProcessBody },
);
app.listen({ port, hostname: "127.0.0.1" });
process.stdout.write(`validate-only /process on http://127.0.0.1:${port}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void app.stop().then(() => process.exit(0));
  });
}
