/**
 * Schemathesis (the OpenAPI fuzzer, from PyPI) in a virtual environment of its
 * own, pinned, under the download cache: the first call installs it (~10 s),
 * later calls find it. Throws a message that says what failed and how to
 * retry; a test that needs it fails loudly, never skips.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CACHE_DIR } from "../services/common";

export const SCHEMATHESIS_VERSION = "4.32.5";

export async function ensureSchemathesis(log: (line: string) => void = () => {}): Promise<string> {
  const venv = join(CACHE_DIR, `schemathesis-${SCHEMATHESIS_VERSION}`);
  const st = join(venv, "bin", "st");
  if (existsSync(st)) return st;
  log(`installing schemathesis ${SCHEMATHESIS_VERSION} from PyPI into ${venv}`);
  const run = async (cmd: string[]) => {
    const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (code !== 0) {
      throw new Error(
        `\`${cmd.join(" ")}\` failed (exit ${code}): ${(err || out).trim().slice(-600)}\n` +
          `Schemathesis needs python3 (with venv) and PyPI; fix that, or remove ${venv} and retry.`,
      );
    }
  };
  await run(["python3", "-m", "venv", venv]);
  await run([join(venv, "bin", "pip"), "install", "--quiet", `schemathesis==${SCHEMATHESIS_VERSION}`]);
  if (!existsSync(st)) throw new Error(`schemathesis installed, but ${st} is missing`);
  return st;
}
