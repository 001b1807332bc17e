/**
 * The compose `monitoring` profile's files (issue 16), checked by their own
 * tools since this machine has no Docker engine: compose-go (the loader of
 * `docker compose`) for docker-compose.yml, promtool for the Prometheus config
 * and rules (and the rules' unit tests), Grafana's published schema types for
 * the dashboard, and the running app for the metric names both refer to.
 * The tools are installed into the download cache on first use
 * (scripts/tools/monitoring-validators.ts); one that cannot be installed fails
 * its test with the way to install it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, run } from "../../scripts/services/common";
import { checkGrafanaDashboard, dashboardExpressions, readText } from "../../scripts/tools/grafana-dashboard-check";
import { ensureComposeCheck, ensureGrafanaSchema, ensurePromtool } from "../../scripts/tools/monitoring-validators";
import { DEPRECATED_METRICS } from "../../src/metrics/prometheus";
import { isolatedRedisUrl, startApp } from "../helpers/app-process";

const DEPLOY = join(ROOT, "deploy");
const DASHBOARD = join(DEPLOY, "grafana", "dashboards", "ai-eventstream.json");
const PROMETHEUS_DIR = join(DEPLOY, "prometheus");
/** A cold Go build of compose-check takes about 40 s on the 2-core machine; leave room for a busy one. */
const INSTALL_TIMEOUT_MS = 300_000;

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "aies-monitoring-"));
  temporary.push(dir);
  return dir;
}

interface ComposeMount {
  type: string;
  source: string;
  target: string;
}
interface ComposeProject {
  services: Record<string, { profiles?: string[]; volumes?: ComposeMount[]; environment?: Record<string, string> }>;
}

async function loadCompose(profiles: string[], env: Record<string, string> = {}): Promise<ComposeProject> {
  const checker = await ensureComposeCheck();
  const args = profiles.flatMap((profile) => ["--profile", profile]);
  // No .env of a developer's may change what is checked: the project dir is the repo, env given explicitly.
  const result = await run([checker, ...args, join(ROOT, "docker-compose.yml")], {
    env: { PROMETHEUS_API_KEY_FILE: "", ...env },
  });
  expect(result.stderr, "compose-check refused docker-compose.yml").toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as ComposeProject;
}

async function promtool(...args: string[]): Promise<string> {
  const result = await run([await ensurePromtool(), ...args], { cwd: PROMETHEUS_DIR });
  const output = `${result.stdout}${result.stderr}`;
  expect(result.code, `promtool ${args.join(" ")}:\n${output}`).toBe(0);
  return output;
}

const bind = (mounts: ComposeMount[] | undefined, target: string) =>
  mounts?.find((mount) => mount.type === "bind" && mount.target === target);

describe("the monitoring profile's compose file", () => {
  test(
    "loads with compose's own loader: the default stays four services, the profile adds Prometheus and Grafana with every mounted file present",
    async () => {
      const plain = await loadCompose([]);
      expect(Object.keys(plain.services).sort()).toEqual(["app", "embeddings", "kafka", "redis"]);

      const project = await loadCompose(["monitoring"]);
      const { prometheus, grafana, app } = project.services;
      expect(Object.keys(project.services).sort()).toEqual([
        "app",
        "embeddings",
        "grafana",
        "kafka",
        "prometheus",
        "redis",
      ]);
      expect(prometheus?.profiles).toEqual(["monitoring"]);
      expect(grafana?.profiles).toEqual(["monitoring"]);
      for (const service of [prometheus, grafana]) {
        for (const mount of service?.volumes ?? []) {
          if (mount.type === "bind")
            expect(existsSync(mount.source), `${mount.source} is mounted but missing`).toBe(true);
        }
      }

      // Prometheus finds its config, its rules next to it and the key file its config names, where compose puts them.
      expect(bind(prometheus?.volumes, "/etc/prometheus/prometheus.yml")?.source).toBe(
        join(PROMETHEUS_DIR, "prometheus.yml"),
      );
      const config = Bun.YAML.parse(readText(join(PROMETHEUS_DIR, "prometheus.yml"))) as {
        rule_files: string[];
        scrape_configs: {
          metrics_path: string;
          authorization: { credentials_file: string };
          static_configs: { targets: string[] }[];
        }[];
      };
      for (const file of config.rule_files) expect(bind(prometheus?.volumes, `/etc/prometheus/${file}`)).toBeDefined();
      const scrape = config.scrape_configs[0];
      expect(scrape?.metrics_path).toBe("/metrics/prometheus");
      expect(bind(prometheus?.volumes, `/etc/prometheus/${scrape?.authorization.credentials_file}`)?.source).toBe(
        join(PROMETHEUS_DIR, "api-key"),
      );
      expect(scrape?.static_configs[0]?.targets).toEqual([`app:${app?.environment?.PORT}`]);

      // Grafana's dashboard provider reads the folder compose mounts the dashboard into.
      const provisioning = bind(grafana?.volumes, "/etc/grafana/provisioning")?.source ?? "";
      const provider = Bun.YAML.parse(readText(join(provisioning, "dashboards", "ai-eventstream.yml"))) as {
        providers: { options: { path: string } }[];
      };
      const dashboards = bind(grafana?.volumes, provider.providers[0]?.options.path ?? "")?.source ?? "";
      expect(readdirSync(dashboards)).toContain("ai-eventstream.json");
      const datasources = Bun.YAML.parse(readText(join(provisioning, "datasources", "prometheus.yml"))) as {
        datasources: { uid: string; url: string }[];
      };
      expect(datasources.datasources[0]?.url).toBe("http://prometheus:9090");
      const dashboard = JSON.parse(readText(DASHBOARD)) as { templating: { list: { current: { value: string } }[] } };
      expect(dashboard.templating.list[0]?.current.value).toBe(datasources.datasources[0]?.uid ?? "");
    },
    INSTALL_TIMEOUT_MS,
  );

  test(
    "PROMETHEUS_API_KEY_FILE replaces the placeholder key file, and a broken compose file is refused",
    async () => {
      const project = await loadCompose(["monitoring"], { PROMETHEUS_API_KEY_FILE: "/run/keys/prometheus" });
      expect(bind(project.services.prometheus?.volumes, "/etc/prometheus/api-key")?.source).toBe(
        "/run/keys/prometheus",
      );

      const dir = tempDir();
      const broken = readText(join(ROOT, "docker-compose.yml")).replace(
        "prometheus: { condition: service_healthy }",
        "prometheus-typo: { condition: service_healthy }",
      );
      writeFileSync(join(dir, "docker-compose.yml"), broken);
      const result = await run([
        await ensureComposeCheck(),
        "--profile",
        "monitoring",
        join(dir, "docker-compose.yml"),
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain("prometheus-typo");
    },
    INSTALL_TIMEOUT_MS,
  );
});

describe("the Prometheus config and alert rules", () => {
  test(
    "promtool accepts the config (its rule and key files included) and the rules, and the rules' unit tests pass",
    async () => {
      expect(await promtool("check", "config", "prometheus.yml")).toContain("SUCCESS");
      expect(await promtool("check", "rules", "rules.yml")).toContain("SUCCESS: 4 rules found");
      expect(await promtool("test", "rules", "rules.test.yml")).toContain("SUCCESS");
    },
    INSTALL_TIMEOUT_MS,
  );

  test("there is an alert for queue depth, failure rate, cache hit rate and Kafka lag, each with a summary and a description", () => {
    const rules = Bun.YAML.parse(readText(join(PROMETHEUS_DIR, "rules.yml"))) as {
      groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[];
    };
    const alerts = rules.groups.flatMap((group) => group.rules);
    expect(alerts.map((rule) => rule.alert).sort()).toEqual([
      "AiEventStreamCacheHitRateLow",
      "AiEventStreamFailureRateHigh",
      "AiEventStreamKafkaLagGrowing",
      "AiEventStreamQueueBacklog",
    ]);
    for (const rule of alerts) {
      expect(rule.annotations.summary?.length, `${rule.alert} summary`).toBeGreaterThan(10);
      expect(rule.annotations.description?.length, `${rule.alert} description`).toBeGreaterThan(40);
    }
  });
});

describe("the Grafana dashboard", () => {
  test(
    "matches Grafana's dashboard schema (@grafana/schema), and a misspelt field does not",
    async () => {
      const schema = await ensureGrafanaSchema();
      const json = readText(DASHBOARD);
      const check = await checkGrafanaDashboard(json, schema);
      expect(check.output).toBe("");
      expect(check.ok).toBe(true);

      const misspelt = await checkGrafanaDashboard(json.replace('"gridPos"', '"gridPoss"'), schema);
      expect(misspelt.ok).toBe(false);
      expect(misspelt.output).toContain("gridPoss");
    },
    INSTALL_TIMEOUT_MS,
  );

  test(
    "every panel's query is valid PromQL, and the panels cover the overview, queues, cache and Kafka",
    async () => {
      const expressions = dashboardExpressions(readText(DASHBOARD));
      expect(expressions.length).toBeGreaterThan(20);
      // promtool parses PromQL as part of checking rules: each query becomes a recording rule.
      const dir = tempDir();
      const rules = expressions.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
      writeFileSync(join(dir, "dashboard-queries.yml"), JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
      expect(await promtool("check", "rules", join(dir, "dashboard-queries.yml"))).toContain(
        `SUCCESS: ${expressions.length} rules found`,
      );

      const dashboard = JSON.parse(readText(DASHBOARD)) as { panels: { type: string; title: string }[] };
      const titles = dashboard.panels.map((panel) => panel.title);
      expect(dashboard.panels.filter((panel) => panel.type === "row").map((panel) => panel.title)).toEqual([
        "Overview",
        "Queues",
        "Cache",
        "Kafka",
      ]);
      for (const title of [
        "Tasks per second",
        "Latency P50 / P95 / P99",
        "Failure and retry rate",
        "LLM calls per minute",
        "LLM tokens per minute",
        "Estimated LLM cost per minute",
        "Queue depth by state",
        "Hit rate by tier",
        "Guard refusals by reason per minute",
        "Average similarity of semantic hits",
        "Tokens saved per minute",
        "Events per second",
        "Consumer lag per partition",
      ]) {
        expect(titles).toContain(title);
      }
      expect(expressions.join("\n")).toContain(
        "histogram_quantile(0.99, sum by (le) (rate(aies_task_latency_seconds_bucket",
      );
    },
    INSTALL_TIMEOUT_MS,
  );
});

describe("the metric names the dashboard and the rules use", () => {
  test("all exist in the running app's /metrics/prometheus, and none is a deprecated name", async () => {
    const app = await startApp({ REDIS_URL: await isolatedRedisUrl(50) });
    let exposition: string;
    try {
      const response = await fetch(`${app.url}/metrics/prometheus`);
      expect(response.status).toBe(200);
      exposition = await response.text();
    } finally {
      expect(await app.stop()).toBe(0);
    }
    const exported = new Set<string>();
    for (const line of exposition.split("\n")) {
      const name = /^# TYPE (\S+) /.exec(line)?.[1] ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)?.[1];
      if (name) exported.add(name);
    }
    // The histograms' series, which the dashboard's quantiles read.
    expect(exported).toContain("aies_task_latency_seconds_bucket");

    const sources = {
      dashboard: readText(DASHBOARD),
      rules: readText(join(PROMETHEUS_DIR, "rules.yml")),
      "rules' unit tests": readText(join(PROMETHEUS_DIR, "rules.test.yml")),
    };
    for (const [source, text] of Object.entries(sources)) {
      const referenced = new Set(text.match(/\baies_[a-z0-9_]+/g));
      expect(referenced.size, source).toBeGreaterThan(3);
      const missing = [...referenced].filter((name) => !exported.has(name));
      expect(missing, `${source} names metrics the app does not export`).toEqual([]);
      const deprecated = [...referenced].filter((name) => name in DEPRECATED_METRICS);
      expect(deprecated, `${source} uses deprecated names`).toEqual([]);
    }
  });
});
