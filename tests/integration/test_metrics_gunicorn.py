"""Metrics under gunicorn with two workers: a scrape adds up every worker's counts.

The deploy config gives the workers one ``PROMETHEUS_MULTIPROC_DIR``; the
requests go out on fresh connections from several threads, so both workers
serve some; the scrape comes after every response was read.
"""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ..servers import Gunicorn

pytestmark = pytest.mark.integration

N = 40


def samples(text):
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples]


def total(found, name, **labels):
    return sum(v for n, found_labels, v in found if n == name
               and all(found_labels.get(k) == w for k, w in labels.items()))


@pytest.fixture
def gunicorn(emulator, tmp_path):
    server = Gunicorn(tmp_path / "gunicorn.log", env={
        "OLLAMA_HOST": emulator.url, "OLLAMA_GATEWAY_STORE": "off",
        "OLLAMA_GATEWAY_WORKERS": "2", "OLLAMA_GATEWAY_THREADS": "8",
        "OLLAMA_GATEWAY_METRICS": "on", "OLLAMA_GATEWAY_MODEL_ALIASES": '{"gpt-4o": "llama3.2"}',
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    yield server
    server.stop()


def one(url, i):
    stream = i % 2 == 1
    body = {"model": "gpt-4o", "stream": stream,
            "messages": [{"role": "user", "content": "word " * (i % 5 + 1)}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    with requests.Session() as session:  # a connection of its own
        resp = session.post(url + "/v1/chat/completions", json=body, timeout=30,
                            headers={"Connection": "close"})
    assert resp.status_code == 200
    if stream:
        return json.loads(resp.text.split("\n\n")[-3][len("data: "):])["usage"]
    return resp.json()["usage"]


def test_scraped_counters_add_up_over_workers(gunicorn, ollama):
    with ThreadPoolExecutor(8) as pool:
        usages = list(pool.map(lambda i: one(gunicorn.url, i), range(N)))
    text = requests.get(gunicorn.url + "/metrics", timeout=10).text
    found = samples(text)
    assert total(found, "ollama_gateway_requests_total", endpoint="chat_completions",
                 model="gpt-4o", status="200", key="anonymous") == N
    assert total(found, "ollama_gateway_tokens_total", kind="prompt") == sum(
        u["prompt_tokens"] for u in usages)
    assert total(found, "ollama_gateway_tokens_total", kind="completion") == sum(
        u["completion_tokens"] for u in usages)
    assert total(found, "ollama_gateway_request_duration_seconds_count") == N
    assert total(found, "ollama_gateway_time_to_first_token_seconds_count", model="gpt-4o") == N
    assert total(found, "ollama_gateway_streams_in_flight") == 0
    assert total(found, "ollama_gateway_build_info") == 1  # livemax: one series for all
    # both workers wrote their files
    pids = {n.rsplit("_", 1)[-1] for n in
            [p.name for p in (gunicorn.log_path.parent / "metrics").iterdir()]
            if n.startswith("counter_")}
    assert len(pids) == 2, pids

    # What one scrape costs, two workers' files, a warm page cache.
    start = time.perf_counter()
    for _ in range(20):
        assert requests.get(gunicorn.url + "/metrics", timeout=10).status_code == 200
    per_scrape = (time.perf_counter() - start) / 20 * 1000
    print("\nscrape: %.2f ms (2 workers, %d bytes)" % (per_scrape, len(text)))
    assert per_scrape < 250
