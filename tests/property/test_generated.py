"""Generated requests against the gateway served for real (in-process, and under gunicorn),
in front of the Ollama emulator. The contract is ``contract.send``.

Seeded: every test runs with ``derandomize=True`` and no example database, so the same
examples are drawn on every run; replay a failure by rerunning its test id, e.g.
``pytest 'tests/property/test_generated.py::test_mutated_requests[chat_completions]'``.
Each test stops sending after its time budget (the rest of its examples pass unsent),
which also bounds shrinking; the counts sent are printed at the end of the module.
"""
import time

import sys

import pytest
import requests

if sys.version_info < (3, 9):  # the generators are test requirements on 3.9+ only
    pytest.importorskip("hypothesis_jsonschema")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from .contract import ENDPOINTS, Counter, dumps, print_line, send  # noqa: E402
from .strategies import DEPTHS, mutated_requests, nested, valid_requests  # noqa: E402

COUNTER = Counter()
SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])


class Budget:
    """Wall-clock seconds a test may spend sending; past them, examples are skipped (counted)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start, self.skipped = seconds, None, 0

    def spent(self) -> bool:
        if self.start is None:
            self.start = time.monotonic()
        if time.monotonic() - self.start > self.seconds:
            self.skipped += 1
            return True
        return False


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    print_line(request, "tests/property/test_generated.py: %s; seeded (derandomize=True), "
               "replay by test id" % COUNTER.report())


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_valid_requests(gateway_url, emulator, session, endpoint):
    """Schema-valid requests: 2xx, or a well-formed 4xx; what reaches Ollama is strict JSON."""
    budget = Budget(4)

    @settings(max_examples=25, **SETTINGS)
    @given(valid_requests(endpoint))
    def run(doc):
        if budget.spent():
            return
        COUNTER.add("valid/" + endpoint)
        send(gateway_url, emulator, endpoint, dumps(doc), session=session)

    run()


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_mutated_requests(gateway_url, emulator, session, endpoint):
    """Valid requests with one thing broken: an invalid one is a 4xx that never reaches Ollama."""
    budget = Budget(7)

    @settings(max_examples=60, **SETTINGS)
    @given(mutated_requests(endpoint))
    def run(case):
        if budget.spent():
            return
        kind, doc = case
        COUNTER.add("mutated/" + endpoint)
        send(gateway_url, emulator, endpoint, dumps(doc), session=session)

    run()


def _deep_cases():
    for endpoint in sorted(ENDPOINTS):
        field = {"chat_completions": "messages", "completions": "prompt", "embeddings": "input",
                 "responses": "input"}[endpoint]
        for depth in DEPTHS:
            yield pytest.param(endpoint, "body", depth, id="%s-body-%d" % (endpoint, depth))
            yield pytest.param(endpoint, field, depth, id="%s-%s-%d" % (endpoint, field, depth))
            yield pytest.param(endpoint, "metadata", depth, id="%s-metadata-%d" % (endpoint, depth))


@pytest.mark.parametrize("endpoint, where, depth", list(_deep_cases()))
def test_deep_nesting_is_a_4xx(gateway_url, emulator, session, endpoint, where, depth):
    """``[[[...]]]`` 100/1,000/10,000 deep, as the whole body or in a field: a 4xx, nothing upstream."""
    if where == "body":
        body = nested(depth).text.encode()
    else:
        doc = {"model": ENDPOINTS[endpoint][2], "messages": [{"role": "user", "content": "Hi"}],
               "prompt": "Hi", "input": "Hi"}
        doc = {k: v for k, v in doc.items() if k == "model" or k == {
            "chat_completions": "messages", "completions": "prompt", "embeddings": "input",
            "responses": "input"}[endpoint]}
        doc[where] = nested(depth)
        body = dumps(doc)
    COUNTER.add("deep/" + endpoint)
    send(gateway_url, emulator, endpoint, body, valid=False, session=session)


def test_mutated_requests_under_gunicorn(gunicorn_url, emulator):
    """A smaller run of the mutations through gunicorn with the deploy config."""
    budget = Budget(5)
    from hypothesis import strategies as st

    @settings(max_examples=40, **SETTINGS)
    @given(st.sampled_from(sorted(ENDPOINTS)).flatmap(lambda e: st.tuples(st.just(e), mutated_requests(e))))
    def run(case):
        if budget.spent():
            return
        endpoint, (kind, doc) = case
        COUNTER.add("gunicorn/" + endpoint)
        send(gunicorn_url, emulator, endpoint, dumps(doc))

    run()
