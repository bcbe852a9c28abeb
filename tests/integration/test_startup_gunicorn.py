"""The start-up check under gunicorn with the deploy config: once, in the master."""
import os
import re

import pytest
import requests

from ..servers import Gunicorn

pytestmark = pytest.mark.integration


def test_a_dead_ollama_is_reported_once_by_the_master(tmp_path, dead_url, monkeypatch):
    for name in [n for n in os.environ if n.startswith("OLLAMA_GATEWAY_")]:
        monkeypatch.delenv(name)
    # One worker: once /v1/healthz answers, every worker has built its app
    # (and would have logged by then).
    server = Gunicorn(tmp_path / "gunicorn.log",
                      env={"OLLAMA_HOST": dead_url, "OLLAMA_GATEWAY_WORKERS": "1",
                           "OLLAMA_GATEWAY_STORE": "sqlite:///%s" % (tmp_path / "gw.db")})
    try:
        health = requests.get(server.url + "/v1/healthz", timeout=10)
        assert health.status_code == 200
    finally:
        server.stop()
    log = server.log()
    warnings = [line for line in log.splitlines() if "does not answer" in line]
    assert len(warnings) == 1, log
    assert re.search(r"\[%d\] \[WARNING\] Ollama at %s does not answer \(connection refused\); "
                     r"set OLLAMA_HOST or OLLAMA_GATEWAY_OLLAMA_URL to where Ollama listens$"
                     % (server.proc.pid, re.escape(dead_url)), warnings[0]), log
    assert "Booting worker" in log
