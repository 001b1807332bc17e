/**
 * The validators of the compose `monitoring` profile's files (issue 16), each
 * installed once from a package registry into the download cache, so a fresh
 * clone's `bun run test` needs nothing installed by hand:
 *   - compose-check: compose-go, the loader `docker compose` itself uses, built
 *     from the Go module proxy (scripts/tools/compose-check, go.sum pinned);
 *     this machine has no Docker engine and no compose plugin.
 *   - promtool from Debian's `prometheus` package (`apt-get download` and
 *     `dpkg-deb -x`, no install): `check config`, `check rules`, `test rules`.
 *   - @grafana/schema from npm: Grafana's dashboard types, generated from its
 *     CUE schema; the dashboard JSON is type-checked against them with tsc.
 * Measured on the 2-core dev machine (shared with other test runs), all three
 * cold, with empty Go module and build caches: 67 s, of which the Go build
 * 61 s, promtool 4.5 s, @grafana/schema 1.6 s; with Go's caches warm the
 * build takes about 35 s; once installed, nothing. Each ensure* throws a message saying what failed and how to
 * install the tool by hand; the tests that call them fail, never skip.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { CACHE_DIR, installOnce, ROOT, run, ServiceError, tail } from "../services/common";

export const COMPOSE_GO_VERSION = "v2.16.2";
export const GRAFANA_SCHEMA_VERSION = "13.2.3";
const COMPOSE_CHECK_SOURCE = join(ROOT, "scripts", "tools", "compose-check");

/** Go from PATH, or where the official tarball puts it. */
function goBinary(): string | undefined {
  const onPath = Bun.which("go");
  if (onPath) return onPath;
  return existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : undefined;
}

/** The compose-check binary; rebuilt when its source or pinned modules change (the folder name carries their hash). */
export async function ensureComposeCheck(): Promise<string> {
  const hash = createHash("sha256");
  for (const file of ["main.go", "go.mod", "go.sum"]) hash.update(readFileSync(join(COMPOSE_CHECK_SOURCE, file)));
  const dir = join(CACHE_DIR, `compose-check-${COMPOSE_GO_VERSION}-${hash.digest("hex").slice(0, 12)}`);
  await installOnce(dir, async (staging) => {
    const go = goBinary();
    const howTo =
      "compose-check is built with Go (1.24+) from the Go module proxy: install Go (https://go.dev/dl, or " +
      "apt-get install golang-go on a recent Debian), or check that the proxy is reachable, then run the tests again.";
    if (!go) throw new ServiceError(`no \`go\` on PATH to build compose-check. ${howTo}`);
    const build = await run([go, "build", "-trimpath", "-o", join(staging, "compose-check"), "."], {
      cwd: COMPOSE_CHECK_SOURCE,
      env: { GOFLAGS: "-mod=readonly -buildvcs=false", GOTOOLCHAIN: "local", CGO_ENABLED: "0" },
    });
    if (build.code !== 0) {
      throw new ServiceError(`\`go build\` of compose-check exited ${build.code}:\n${tail(build.stderr)}\n${howTo}`);
    }
  });
  return join(dir, "compose-check");
}

/**
 * promtool, from Debian's `prometheus` package (2.42 on Debian 12): downloaded
 * and unpacked, not installed, so no service is set up. PROMTOOL overrides it.
 */
export async function ensurePromtool(): Promise<string> {
  if (process.env.PROMTOOL) return process.env.PROMTOOL;
  const dir = join(CACHE_DIR, "promtool-debian");
  await installOnce(dir, async (staging) => {
    const howTo =
      "promtool comes from Debian's `prometheus` package: run `apt-get update` (as root) so that " +
      "`apt-get download prometheus` works, or install promtool yourself and set PROMTOOL to its path.";
    let download = await run(["apt-get", "download", "prometheus"], { cwd: staging });
    if (download.code !== 0 && process.getuid?.() === 0) {
      // A fresh machine may have no package lists yet.
      await run(["apt-get", "update"]);
      download = await run(["apt-get", "download", "prometheus"], { cwd: staging });
    }
    const deb = readdirSync(staging).find((file) => file.startsWith("prometheus_") && file.endsWith(".deb"));
    if (download.code !== 0 || !deb) {
      throw new ServiceError(
        `\`apt-get download prometheus\` exited ${download.code}:\n${tail(download.stderr)}\n${howTo}`,
      );
    }
    const unpack = await run(["dpkg-deb", "-x", deb, "root"], { cwd: staging });
    if (unpack.code !== 0) throw new ServiceError(`\`dpkg-deb -x ${deb}\` failed:\n${tail(unpack.stderr)}\n${howTo}`);
    renameSync(join(staging, "root", "usr", "bin", "promtool"), join(staging, "promtool"));
    await run(["rm", "-rf", join(staging, "root"), join(staging, deb)]);
  });
  return join(dir, "promtool");
}

/** The folder of the @grafana/schema package (its `dist/types` has the dashboard's types). */
export async function ensureGrafanaSchema(): Promise<string> {
  const dir = join(CACHE_DIR, `grafana-schema-${GRAFANA_SCHEMA_VERSION}`);
  await installOnce(dir, async (staging) => {
    const howTo = `@grafana/schema comes from the npm registry with \`npm pack\`: install npm, or check that the registry is reachable.`;
    const pack = await run(["npm", "pack", "--silent", `@grafana/schema@${GRAFANA_SCHEMA_VERSION}`], { cwd: staging });
    const tarball = pack.stdout.trim().split("\n").at(-1) ?? "";
    if (pack.code !== 0 || !existsSync(join(staging, tarball))) {
      throw new ServiceError(
        `\`npm pack @grafana/schema@${GRAFANA_SCHEMA_VERSION}\` exited ${pack.code}:\n${tail(pack.stderr)}\n${howTo}`,
      );
    }
    const untar = await run(["tar", "xzf", tarball], { cwd: staging });
    if (untar.code !== 0) throw new ServiceError(`could not unpack ${tarball}: ${tail(untar.stderr)}`);
  });
  return join(dir, "package");
}
