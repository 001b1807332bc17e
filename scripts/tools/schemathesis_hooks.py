"""Schemathesis hooks for the API fuzz test (test/integration/openapi-fuzz.test.ts).

An Idempotency-Key names one request: the API answers 422 when a key comes
back with another body (as the IETF draft asks), and deterministic
generation draws the same few keys for different bodies. Each generated key
gets a unique suffix, so a schema-valid request is judged on its own.

GET /tasks's `cursor` is opaque: only a value the list gave is one (anything
else is 422 INVALID_CURSOR, which test/integration/dashboard-sections.test.ts
checks), and no schema can say which strings those are. Generated cursors are
dropped, so the rest of the query is judged on its own.
"""

import uuid

import schemathesis


@schemathesis.hook
def map_headers(ctx, headers):
    if headers and "idempotency-key" in headers:
        headers["idempotency-key"] = f"{headers['idempotency-key']}-{uuid.uuid4()}"[:200]
    return headers


@schemathesis.hook
def map_query(ctx, query):
    if query and "cursor" in query:
        del query["cursor"]
    return query
