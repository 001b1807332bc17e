/**
 * A real headless Chromium (Debian's package, `scripts/ensure-chromium.sh`)
 * driven by puppeteer-core, for tests of what browsers do: EventSource,
 * WebSocket, pages. Screenshots go to `.artifacts/screenshots/` to be looked
 * at; those of the operator console's sections to `docs/screenshots/`, where
 * the README shows them, rewritten by every run.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

const ROOT = join(import.meta.dir, "..", "..");
export const SCREENSHOTS = join(ROOT, ".artifacts", "screenshots");
export const DOC_SCREENSHOTS = join(ROOT, "docs", "screenshots");

const HOW_TO_FIX =
  "Browser tests drive Debian's Chromium. Install it with `bash scripts/ensure-chromium.sh` (or run `bun run test`, which does).";

export async function launchBrowser(): Promise<Browser> {
  const executablePath = Bun.which("chromium");
  if (!executablePath) throw new Error(`chromium is not on PATH. ${HOW_TO_FIX}`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  mkdirSync(DOC_SCREENSHOTS, { recursive: true });
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

/**
 * Opens the operator console at 1280×800 and logs in with `key`, ready once its streams are open; every
 * request it makes must stay on the app's origin (`outside` collects those that do not).
 */
export async function openConsole(
  browser: Browser,
  appUrl: string,
  key: string,
  options: { loginScreenshot?: string } = {},
): Promise<{ page: Page; outside: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const outside: string[] = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(appUrl)) outside.push(request.url());
  });
  await page.goto(`${appUrl}/dashboard`);
  await page.waitForSelector("#login:not([hidden])");
  if (options.loginScreenshot) await page.screenshot({ path: options.loginScreenshot });
  await page.type("#api-key", key);
  await page.click("#login button");
  await page.waitForSelector('#sentiment[data-live="true"]', { timeout: 10_000 });
  return { page, outside };
}

/**
 * A screenshot of one section of the console (`#id`) as a 1280×800 window lays it out, cut to the section's
 * box; into docs/screenshots/dashboard-{name}.png.
 */
export async function screenshotSection(page: Page, id: string, name = id): Promise<string> {
  const section = await page.$(`#${id}`);
  if (!section) throw new Error(`no section #${id}`);
  const path = join(DOC_SCREENSHOTS, `dashboard-${name}.png`);
  await section.screenshot({ path });
  return path;
}
