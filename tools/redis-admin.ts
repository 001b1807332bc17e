/**
 * Redis chores of tests, benches and scripts, never of the running product:
 * emptying a scratch database, and asking whether the Query Engine is loaded.
 */
import type Redis from "ioredis";
import { errorMessage } from "../src/errors";

/**
 * Empties the client's database key by key (SCAN + UNLINK), never FLUSHDB:
 * the Query Engine drops every index of the server, database 0's included,
 * on a FLUSHDB of any database (Redis Stack 7.4, search 2.10), which would
 * take the semantic cache's index from under a running deployment.
 */
export async function emptyDatabase(client: Redis): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== "0");
  return deleted;
}

/** True when FT.* commands work, i.e. vector search is available. */
export async function hasVectorSearch(client: Redis): Promise<boolean> {
  try {
    await client.call("FT._LIST");
    return true;
  } catch (error) {
    if (/unknown command/i.test(errorMessage(error))) return false;
    throw error;
  }
}
