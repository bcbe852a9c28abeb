"""Prometheus metrics in one process: counters equal to what was asked and answered.

Each test builds its own app: without ``PROMETHEUS_MULTIPROC_DIR`` every app
has a registry of its own, so counts start at zero. The scrape is parsed with
``prometheus_client``'s own parser.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from ollama_gateway import OllamaGateway, create_app
from ollama_gateway.observe import metrics_view

from ..ollama_emulator import chat_line, ndjson_reply

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi there"}]}


def scrape(base, **kw):
    resp = requests.get(base + "/metrics", timeout=5, **kw)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """Return the sum over the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, found), v in samples.items() if n == name
               and set(labels.items()) <= set(found))


@pytest.fixture
def app_for(emulator, serve):
    def build(**settings):
        app = create_app(**dict(dict(ollama_url=emulator.url, read_timeout=5, store="off",
                                     startup_check=False, metrics="on"), **settings))
        return serve(app)
    return build


def test_counts_requests_tokens_and_times(app_for, ollama):
    base = app_for(model_aliases={"gpt-4o": "llama3.2"})
    tokens = {"prompt": 0, "completion": 0}
    for model, stream in (("gpt-4o", False), ("gpt-4o", True), ("llama3.2", False)):
        body = dict(CHAT, model=model, stream=stream, **(
            {"stream_options": {"include_usage": True}} if stream else {}))
        resp = requests.post(base + "/v1/chat/completions", json=body, timeout=10)
        assert resp.status_code == 200
        if stream:  # the usage chunk is the last before [DONE]
            usage = json.loads(resp.text.split("\n\n")[-3][len("data: "):])["usage"]
        else:
            usage = resp.json()["usage"]
        tokens["prompt"] += usage["prompt_tokens"]
        tokens["completion"] += usage["completion_tokens"]
    samples = scrape(base)
    labels = dict(endpoint="chat_completions", status="200", key="anonymous")
    assert value(samples, "ollama_gateway_requests_total", model="gpt-4o", **labels) == 2
    # not an alias, not allowed by name: the label stays bounded
    assert value(samples, "ollama_gateway_requests_total", model="other", **labels) == 1
    for kind, count in tokens.items():
        assert total(samples, "ollama_gateway_tokens_total", kind=kind) == count > 0
    assert value(samples, "ollama_gateway_request_duration_seconds_count",
                 endpoint="chat_completions") == 3
    assert total(samples, "ollama_gateway_time_to_first_token_seconds_count") == 3
    assert value(samples, "ollama_gateway_time_to_first_token_seconds_bucket",
                 endpoint="chat_completions", model="gpt-4o", le="300.0") == 2
    assert value(samples, "ollama_gateway_streams_in_flight") == 0
    assert total(samples, "ollama_gateway_build_info") == 1


def test_stream_in_flight_while_open(app_for, ollama):
    base = app_for()
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel")], then="stall"))
    resp = requests.post(base + "/v1/chat/completions", json=dict(CHAT, stream=True),
                         stream=True, timeout=10)
    next(resp.iter_content(chunk_size=None))  # the stream has started
    assert value(scrape(base), "ollama_gateway_streams_in_flight") == 1
    resp.close()


def test_upstream_errors_by_host_and_kind(emulator, serve, dead_url):
    base = serve(create_app(ollama_url=dead_url, store="off", startup_check=False,
                            metrics="on"))
    for _ in range(2):
        assert requests.post(base + "/v1/chat/completions", json=CHAT,
                             timeout=10).status_code == 502
    samples = scrape(base)
    assert value(samples, "ollama_gateway_upstream_errors_total", host=dead_url,
                 kind="upstream_unreachable") == 2
    assert value(samples, "ollama_gateway_requests_total", endpoint="chat_completions",
                 model="other", status="502", key="anonymous") == 2


def test_key_labels_and_scrape_key(app_for, ollama):
    base = app_for(api_keys=["sk-one"], metrics_key="scrape-me", allowed_models=["llama3.2"])
    requests.post(base + "/v1/chat/completions", json=CHAT, timeout=10,
                  headers={"Authorization": "Bearer sk-one"})
    requests.post(base + "/v1/chat/completions", json=CHAT, timeout=10)  # 401
    assert requests.get(base + "/metrics", timeout=5).status_code == 401
    wrong = requests.get(base + "/metrics", timeout=5, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    samples = scrape(base, headers={"Authorization": "Bearer scrape-me"})
    keys = {dict(found)["key"] for (name, found) in samples
            if name == "ollama_gateway_requests_total"}
    assert len(keys) == 2 and "unauthenticated" in keys
    assert [k for k in keys if k != "unauthenticated"][0].startswith("key-")
    assert "sk-one" not in str(samples)
    assert value(samples, "ollama_gateway_requests_total", endpoint="chat_completions",
                 model="llama3.2", status="200", key=[k for k in keys if k.startswith("key-")][0]
                 ) == 1


def test_metrics_off_serves_no_metrics(app_for, ollama):
    base = app_for(metrics="off")
    assert requests.get(base + "/metrics", timeout=5).status_code == 404


def test_host_app_mounts_the_view(emulator, serve, ollama):
    app = Flask("host")
    OllamaGateway(app, ollama_url=emulator.url, store="off", startup_check=False, metrics="on")
    app.add_url_rule("/internal/metrics", view_func=metrics_view)
    base = serve(app)
    requests.post(base + "/v1/chat/completions", json=CHAT, timeout=10)
    resp = requests.get(base + "/internal/metrics", timeout=5)
    assert resp.status_code == 200
    assert "ollama_gateway_requests_total{" in resp.text
    assert requests.get(base + "/metrics", timeout=5).status_code == 404  # not ours to add


def _site_without_prometheus(tmp_path: Path) -> Path:
    """Return a directory holding every installed package but prometheus_client (symlinks)."""
    import prometheus_client

    site = Path(prometheus_client.__file__).resolve().parent.parent
    out = tmp_path / "site"
    out.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith("prometheus_client"):
            (out / entry.name).symlink_to(entry)
    return out


@pytest.mark.parametrize("setting, outcome", [("on", "error"), ("auto", "off")])
def test_missing_package(tmp_path, setting, outcome):
    # A real interpreter that cannot import prometheus_client: -S skips the
    # site-packages (and its .pth files), PYTHONPATH gives back all but it.
    app_dir = Path(__file__).resolve().parents[2] / "app"
    code = ("from ollama_gateway import create_app\n"
            "try:\n"
            "    app = create_app(metrics=%r, startup_check=False, store='off')\n"
            "except ValueError as exc:\n"
            "    print('error:', exc)\n"
            "else:\n"
            "    print('metrics:', app.extensions['ollama_gateway'].observer.metrics)\n" % setting)
    env = {"PATH": os.environ.get("PATH", ""),
           "PYTHONPATH": os.pathsep.join([str(app_dir), str(_site_without_prometheus(tmp_path))])}
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd=str(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    text = out.stdout.decode()
    if outcome == "error":
        assert "error:" in text and "pip install 'ollama-gateway[metrics]'" in text, text
    else:
        assert "metrics: None" in text, text


def test_dashboard_names_only_metrics_that_exist(app_for, ollama):
    import re

    base = app_for()
    requests.post(base + "/v1/chat/completions", json=CHAT, timeout=10)
    scraped = {name for name, _ in scrape(base)}
    dashboard = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ollama-gateway.json"
    exprs = [t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p["targets"]]
    used = set(re.findall(r"ollama_gateway_[a-z_]+", " ".join(exprs)))
    assert used and used <= scraped | {"ollama_gateway_upstream_errors_total"}, used - scraped
