/**
 * Checks a Grafana dashboard JSON against Grafana's own schema as published
 * in @grafana/schema: the dashboard model's TypeScript types (generated from
 * Grafana's CUE schema), with each panel's `options` and
 * `fieldConfig.defaults.custom` checked against its plugin's types (timeseries,
 * stat). The JSON is pasted into a TypeScript file as an object literal and
 * `satisfies` the type, so tsc rejects a wrong type, a missing required field
 * and, through excess-property checks, a misspelt field, which a plain import
 * of the JSON would let through. String enums are compared by their values
 * (`${Enum}`), as they appear in JSON.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, run } from "../services/common";

const TYPES = (schema: string) => `
import type * as dashboard from "${schema}/dist/types/raw/dashboard/x/types.gen";
import type * as timeseries from "${schema}/dist/types/raw/composable/timeseries/panelcfg/x/types.gen";
import type * as stat from "${schema}/dist/types/raw/composable/stat/panelcfg/x/types.gen";

/** A type as JSON spells it: string enums as their values. */
type Json<T> = T extends string
  ? \`\${T}\`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

type FieldConfigSource<Custom> = Omit<dashboard.FieldConfigSource, "defaults"> & {
  defaults: Omit<dashboard.FieldConfig, "custom"> & { custom?: Custom };
};
type PluginPanel<Type extends string, Options, Custom> = Omit<dashboard.Panel, "type" | "options" | "fieldConfig"> & {
  type: Type;
  options: Options;
  fieldConfig: FieldConfigSource<Custom>;
};
type KnownPanel =
  | PluginPanel<"timeseries", timeseries.Options, timeseries.FieldConfig>
  | PluginPanel<"stat", stat.Options, Record<string, never>>;
type Row = Omit<dashboard.RowPanel, "panels"> & { panels: KnownPanel[] };
export type CheckedDashboard = Json<Omit<dashboard.Dashboard, "panels"> & { panels: Array<KnownPanel | Row> }>;
`;

export interface DashboardCheck {
  ok: boolean;
  /** tsc's diagnostics, with line numbers of the generated file (the JSON starts on line 2). */
  output: string;
}

/** Type-checks `json` (a dashboard's text) against @grafana/schema, unpacked at `schemaDir`. */
export async function checkGrafanaDashboard(json: string, schemaDir: string): Promise<DashboardCheck> {
  JSON.parse(json);
  const dir = mkdtempSync(join(tmpdir(), "aies-dashboard-check-"));
  try {
    writeFileSync(join(dir, "types.ts"), TYPES(schemaDir));
    writeFileSync(
      join(dir, "dashboard.ts"),
      `import type { CheckedDashboard } from "./types";\nexport const dashboard = ${json.trim()} satisfies CheckedDashboard;\n`,
    );
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: "ESNext",
          module: "Preserve",
          moduleResolution: "bundler",
          skipLibCheck: true,
          types: [],
          // @grafana/schema's plugin types import "@grafana/schema" itself.
          paths: { "@grafana/schema": [join(schemaDir, "dist/types/index.d.ts")] },
        },
        files: ["dashboard.ts"],
      }),
    );
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const result = await run(["bun", tsc, "-p", join(dir, "tsconfig.json"), "--pretty", "false"], { cwd: dir });
    return { ok: result.code === 0, output: `${result.stdout}${result.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The dashboard's PromQL expressions, with Grafana's variables replaced by values PromQL accepts. */
export function dashboardExpressions(json: string): string[] {
  const expressions: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "expr" && typeof value === "string") expressions.push(value);
        else visit(value);
      }
    }
  };
  visit(JSON.parse(json));
  return expressions.map((expr) => expr.replaceAll(/\$__(rate_)?interval|\$__range/g, "5m"));
}

/** Reads a file as text; here so the test and scripts share one path join. */
export const readText = (path: string) => readFileSync(path, "utf8");
