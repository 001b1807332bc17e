/**
 * The API keys: the pairs of API_KEYS plus the lines of API_KEYS_FILE (so that
 * keys can live in a mounted secret instead of the environment). A bad line is
 * reported by its number only, never echoed: it holds a secret.
 */

import { readFileSync } from "node:fs";
import { API_KEY_PAIR, type Env } from "./schema";
import type { ApiKey } from "./types";

const PAIR = new RegExp(`^${API_KEY_PAIR}$`);

/** API_KEYS and the lines of API_KEYS_FILE, as name/key pairs. Throws naming the file and line of a bad one. */
export function apiKeysOf(env: Pick<Env, "API_KEYS" | "API_KEYS_FILE">): ApiKey[] {
  const pairs = env.API_KEYS === "" ? [] : env.API_KEYS.split(",");
  if (env.API_KEYS_FILE !== "") {
    let text: string;
    try {
      text = readFileSync(env.API_KEYS_FILE, "utf8");
    } catch (error) {
      throw new Error(`API_KEYS_FILE="${env.API_KEYS_FILE}" cannot be read: ${(error as Error).message}`);
    }
    for (const [i, raw] of text.split("\n").entries()) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      if (!PAIR.test(line)) throw new Error(`API_KEYS_FILE line ${i + 1} is not name:key (a key of 8+ characters)`);
      pairs.push(line);
    }
  }
  return pairs.map((pair) => {
    const separator = pair.indexOf(":");
    return { name: pair.slice(0, separator), key: pair.slice(separator + 1) };
  });
}
