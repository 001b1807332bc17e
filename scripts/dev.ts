/**
 * `bun run dev`: the app with every role, its semantic cache on the real local
 * embedding model that `services:up` has just started (issue 14), unless
 * EMBEDDING_PROVIDER says otherwise. Set here rather than in package.json's
 * shell line, because Bun has loaded .env into process.env by now: a value in
 * .env still wins, where a shell default would have hidden it.
 */
process.env.EMBEDDING_PROVIDER ||= "local";
await import("../src/main");
