/**
 * The import rule of README's "Layout": src/ is layered in data-flow order and
 * every import points down (or stays in its folder). A type or constant
 * imported from a layer above, because it happened to be defined there first,
 * fails here with the file and the import that break the rule.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Glob } from "bun";

const SRC = join(import.meta.dir, "..", "..", "src");

/** Top to bottom. The foundation (last) is what every layer may use; it imports only itself. */
export const LAYERS: readonly (readonly string[])[] = [
  ["main.ts", "roles"],
  ["api"],
  ["finetune"],
  ["ingest"],
  ["queue"],
  ["pipeline"],
  ["cache"],
  ["llm"],
  ["webhooks"],
  ["store"],
  ["metrics"],
  [
    "task",
    "config",
    "log.ts",
    "errors.ts",
    "events.ts",
    "health-probe.ts",
    "lifecycle.ts",
    "version.ts",
    "redis",
    "util",
  ],
];

/** Outside packages that belong to one part of the tree, so that the others never load them. */
const PACKAGE_OWNERS: Readonly<Record<string, readonly string[]>> = {
  elysia: ["api"],
  "@elysiajs/swagger": ["api"],
  graphql: ["api"],
  "graphql-yoga": ["api"],
  "@escape.tech/graphql-armor-cost-limit": ["api"],
  "@escape.tech/graphql-armor-max-aliases": ["api"],
  "@escape.tech/graphql-armor-max-depth": ["api"],
  "@escape.tech/graphql-armor-max-tokens": ["api"],
  "bee-queue": ["queue"],
  kafkajs: ["ingest", "roles"],
  // The providers' SDKs stay behind the LLM port (issue 17): nothing else sees an SDK type.
  openai: ["llm"],
  "@anthropic-ai/sdk": ["llm"],
  "cohere-ai": ["llm"],
};

/** The folder or top-level file of src/ that a path is in (an import's path has no extension). */
function topOf(path: string): string {
  const top = relative(SRC, path).split("/")[0] as string;
  return top.includes("/") || existsSync(join(SRC, top)) ? top : `${top}.ts`;
}

function layerOf(file: string): number {
  const top = topOf(file);
  const index = LAYERS.findIndex((layer) => layer.includes(top));
  if (index < 0)
    throw new Error(`${relative(SRC, file)} is in no layer: add "${top}" to LAYERS and to README's Layout`);
  return index;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)[^"'`;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(IMPORT)].map((match) => (match[1] ?? match[2]) as string);
}

const files = [...new Glob("**/*.ts").scanSync(SRC)].map((path) => join(SRC, path)).sort();

describe("layers", () => {
  test("src/ has files to check, and each is in a layer", () => {
    expect(files.length).toBeGreaterThan(50);
    for (const file of files) layerOf(file);
  });

  test("every import of src/ points down the data flow, or stays in its own folder", () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const specifier of importsOf(file)) {
        if (!specifier.startsWith(".")) continue;
        const target = resolve(dirname(file), specifier);
        if (!target.startsWith(SRC)) {
          if (!specifier.endsWith("package.json"))
            upward.push(`${relative(SRC, file)} imports ${specifier}, outside src/`);
          continue;
        }
        if (topOf(target) === topOf(file)) continue;
        if (layerOf(target) < layerOf(file)) upward.push(`${relative(SRC, file)} imports ${specifier} (a layer above)`);
      }
    }
    expect(upward).toEqual([]);
  });

  test("the task contract imports nothing of the project", () => {
    const taskFiles = files.filter((file) => topOf(file) === "task");
    expect(taskFiles.length).toBeGreaterThan(0);
    for (const file of taskFiles) {
      const outside = importsOf(file).filter(
        (specifier) => specifier.startsWith(".") && topOf(resolve(dirname(file), specifier)) !== "task",
      );
      expect(outside).toEqual([]);
    }
  });

  test("the HTTP framework, GraphQL, Bee-Queue, kafkajs and the LLM SDKs are loaded only by their own part of the tree", () => {
    const misplaced: string[] = [];
    for (const file of files) {
      for (const specifier of importsOf(file)) {
        const owners = PACKAGE_OWNERS[specifier];
        if (owners && !owners.includes(topOf(file))) misplaced.push(`${relative(SRC, file)} imports ${specifier}`);
      }
    }
    expect(misplaced).toEqual([]);
  });
});
