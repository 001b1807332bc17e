/** Writes a run's JSON and HTML report side by side in the results folder (gitignored). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunResult } from "../result";
import { renderHtml } from "./html";

export function writeResult(result: RunResult, outDir: string): { json: string; html: string } {
  mkdirSync(outDir, { recursive: true });
  const stamp = result.startedAt.replace(/[:.]/g, "-");
  const base = join(
    outDir,
    `${result.scenario}${result.label ? `-${result.label.replace(/[^\w.-]+/g, "_")}` : ""}-${stamp}`,
  );
  const paths = { json: `${base}.json`, html: `${base}.html` };
  writeFileSync(paths.json, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(paths.html, renderHtml(result));
  return paths;
}
