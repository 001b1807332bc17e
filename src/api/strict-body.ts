/**
 * A route's own body parser for bodies whose schema says
 * `additionalProperties: false`. Elysia removes unknown fields instead of
 * refusing them (its normalisation), so a client's typo (`"ratting": 5`)
 * would be dropped in silence and the request answered as if it had not been
 * sent; the OpenAPI document promises a 422. This parser refuses a body with
 * a field the route does not know, names it, and otherwise parses as the
 * app does: nothing for an empty body (a bodyless `curl -X POST`), 400 for
 * JSON that does not parse. The chunked-body size cap stays the app's.
 */
import { ParseError } from "elysia";
import { AppError } from "../errors";

export function strictJsonBody(fields: readonly string[]) {
  const known = new Set(fields);
  return async ({ request }: { request: Request }): Promise<unknown> => {
    const text = await request.text();
    if (text.trim() === "") return undefined;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ParseError();
    }
    if (body !== null && typeof body === "object" && !Array.isArray(body)) {
      const unknown = Object.keys(body).find((key) => !known.has(key));
      if (unknown !== undefined)
        throw new AppError("VALIDATION_FAILED", `${unknown || "(empty name)"}: not a field of this body`, {
          status: 422,
          details: { field: unknown, location: "body", known: [...known] },
        });
    }
    return body;
  };
}
