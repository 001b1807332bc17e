/**
 * A real headless Chromium (Debian's package, `scripts/ensure-chromium.sh`)
 * driven by puppeteer-core, for tests of what browsers do: EventSource,
 * WebSocket, pages. Screenshots go to `.artifacts/screenshots/` to be looked at.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

const ROOT = join(import.meta.dir, "..", "..");
export const SCREENSHOTS = join(ROOT, ".artifacts", "screenshots");

const HOW_TO_FIX =
  "Browser tests drive Debian's Chromium. Install it with `bash scripts/ensure-chromium.sh` (or run `bun run test`, which does).";

export async function launchBrowser(): Promise<Browser> {
  const executablePath = Bun.which("chromium");
  if (!executablePath) throw new Error(`chromium is not on PATH. ${HOW_TO_FIX}`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}
