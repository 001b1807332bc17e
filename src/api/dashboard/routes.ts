/**
 * GET /dashboard: the operator console (issue 16), one page with its script
 * and style, read from this folder once at start and served as they are: no
 * build step, no CDN, nothing fetched from outside. The page and its assets
 * need no key (they hold no data); the data comes from the streams, which
 * do: with API keys on, the page asks for one (see app.js).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Elysia } from "elysia";

/** The paths of the page and its assets: public, since they carry no data (api/auth.ts). */
export const DASHBOARD_PATHS = ["/dashboard", "/dashboard/app.js", "/dashboard/logic.js", "/dashboard/style.css"];

function loadAssets(dir = import.meta.dir) {
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  return {
    html: read("index.html"),
    app: read("app.js"),
    // The arithmetic is TypeScript so the unit tests type-check it; the browser gets it as plain JS.
    logic: new Bun.Transpiler({ loader: "ts" }).transformSync(read("logic.ts")),
    css: read("style.css"),
  };
}

export function dashboardRoutes() {
  const assets = loadAssets();
  const serve = (body: string, type: string) => () =>
    new Response(body, {
      headers: {
        "content-type": `${type}; charset=utf-8`,
        "cache-control": "no-cache",
        // Everything comes from this origin; nothing inline runs, nothing is framed.
        "content-security-policy":
          "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
      },
    });
  const hidden = { detail: { hide: true } };
  return new Elysia({ name: "dashboard" })
    .get("/dashboard", serve(assets.html, "text/html"), hidden)
    .get("/dashboard/app.js", serve(assets.app, "text/javascript"), hidden)
    .get("/dashboard/logic.js", serve(assets.logic, "text/javascript"), hidden)
    .get("/dashboard/style.css", serve(assets.css, "text/css"), hidden);
}
