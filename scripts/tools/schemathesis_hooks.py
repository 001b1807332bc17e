"""Schemathesis hooks for the API fuzz test (test/integration/openapi-fuzz.test.ts).

An Idempotency-Key names one request: the API answers 422 when a key comes
back with another body (as the IETF draft asks), and deterministic
generation draws the same few keys for different bodies. Each generated key
gets a unique suffix, so a schema-valid request is judged on its own.
"""

import uuid

import schemathesis


@schemathesis.hook
def map_headers(ctx, headers):
    if headers and "idempotency-key" in headers:
        headers["idempotency-key"] = f"{headers['idempotency-key']}-{uuid.uuid4()}"[:200]
    return headers
