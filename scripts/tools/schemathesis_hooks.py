"""Schemathesis hooks for the API fuzz test (test/integration/openapi-fuzz.test.ts).

An Idempotency-Key names one request: the API answers 422 when a key comes
back with another body (as the IETF draft asks), and deterministic
generation draws the same few keys for different bodies. Each generated key
gets a unique suffix, so a schema-valid request is judged on its own.

GET /tasks's `cursor` is opaque: only a value the list gave is one (anything
else is 422 INVALID_CURSOR, which test/integration/dashboard-sections.test.ts
checks), and no schema can say which strings those are. Generated cursors are
dropped, so the rest of the query is judged on its own.

An experiment's variants must name prompt versions that exist, models whose
provider has a key here, and names unique within it (map_body).
"""

import re
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


NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MODEL = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def _experiment_variant(variant, index):
    # A variant names a prompt version that must exist and a model whose provider must have a key here: facts
    # no schema can state (test/integration/experiments.test.ts checks their 422s). Names must be unique in
    # an experiment, which JSON Schema cannot say of an array of objects either. Only valid values are
    # changed, so a request generated to be invalid stays invalid.
    if isinstance(variant, dict):
        version = variant.get("prompt_version")
        if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
            del variant["prompt_version"]
        model = variant.get("model")
        if isinstance(model, str) and MODEL.match(model):
            del variant["model"]
        name = variant.get("name")
        if isinstance(name, str) and NAME.match(name):
            variant["name"] = f"{name[:28]}-{index}"
    return variant


@schemathesis.hook
def map_body(ctx, body):
    path = ctx.operation.path
    if not isinstance(body, dict):
        return body
    if path == "/experiments" and isinstance(body.get("variants"), list):
        body["variants"] = [_experiment_variant(v, i) for i, v in enumerate(body["variants"])]
    elif path == "/experiments/{id}/variants":
        _experiment_variant(body, 0)
    elif path == "/experiments/{id}/end":
        # Only a variant of the experiment can win; the 422 of another is tested in experiments.test.ts.
        if isinstance(body.get("winner"), str) and NAME.match(body["winner"]):
            del body["winner"]
    return body
