"""OpenAI's own OpenAPI spec as the test plan (schemathesis), for the operations the gateway
serves, sent over HTTP to the gateway served in-process in front of the Ollama emulator.

Checks: never a 5xx, the Content-Type the spec documents, and OpenAI's response schema
for the answers the spec documents (its 2xx). Bodies keep what schemathesis drew, except
that every other example names an emulator model, so that 2xx answers are checked too.
Seeded (``derandomize=True``, no database): rerun the test id to replay a failure.
"""
import os
import sys
import time
from pathlib import Path

import pytest
import requests

if sys.version_info < (3, 9):  # schemathesis 4 needs Python 3.9+
    schemathesis = pytest.importorskip("schemathesis")
else:
    import schemathesis
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance)

from .contract import Counter, check_error, print_line  # noqa: E402

SPEC = Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.yaml"
OPERATIONS = ["createChatCompletion", "createCompletion", "createEmbedding", "listModels", "retrieveModel",
              "createResponse", "getResponse", "deleteResponse", "listInputItems"]
MODELS = {"createEmbedding": "nomic-embed-text"}
COUNTER = Counter()
BUDGET = 4.0  # seconds of sending per operation


@pytest.fixture(scope="module")
def api(request):
    if not SPEC.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("OpenAI's spec is missing: %s" % SPEC)
        pytest.skip("OpenAI's spec is missing: %s" % SPEC)
    yield schemathesis.openapi.from_path(str(SPEC))
    print_line(request, "tests/property/test_schemathesis.py: %s; seeded (derandomize=True), "
               "replay by test id" % COUNTER.report())


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_openai_spec(api, gateway_url, emulator, session, operation_id):
    operation = api.find_operation_by_id(operation_id)
    started = []

    @settings(max_examples=25, derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(operation.as_strategy())
    def run(case):
        if not started:
            started.append(time.monotonic())
        if time.monotonic() - started[0] > BUDGET:
            return
        count = COUNTER.sent.get(operation_id, 0)
        COUNTER.add(operation_id)
        if count % 2:
            if isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = MODELS.get(operation_id, "llama3.2")
            if case.path_parameters and "model" in case.path_parameters:
                case.path_parameters["model"] = "llama3.2"
        response = case.call(base_url=gateway_url, session=session, timeout=30)
        checks = [not_a_server_error, content_type_conformance]
        if 200 <= response.status_code < 300:
            # OpenAI's spec documents its 4xx bodies without the {"error": ...} wrapper its API
            # sends (and the gateway sends); those are held to contract.check_error instead.
            checks.append(response_schema_conformance)
        else:
            check_error(response)
        case.validate_response(response, checks=checks)

    run()
