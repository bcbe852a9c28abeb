"""The start-up check: each Ollama host's version, or a warning that names the fix."""
import logging
import os
import socket
import time

import pytest

from ollama_gateway import create_app
from ollama_gateway.startup import check_hosts

from ..ollama_emulator import VERSION, error_reply


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("OLLAMA_GATEWAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


@pytest.fixture
def silent_url():
    """A loopback URL that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield "http://127.0.0.1:%d" % sock.getsockname()[1]


def gateway_lines(caplog):
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ollama_gateway"]


def test_a_live_host_is_logged_with_its_version(ollama, caplog):
    caplog.set_level(logging.INFO, logger="ollama_gateway")
    create_app(ollama_url=ollama.url)
    assert gateway_lines(caplog) == [
        (logging.INFO, "Ollama at %s answers: version %s" % (ollama.url, VERSION))]
    assert [(r.method, r.path) for r in ollama.requests] == [("GET", "/api/version")]


def test_the_check_leaves_the_apps_pool_empty(ollama):
    app = create_app(ollama_url=ollama.url)
    client = app.extensions["ollama_gateway"].clients[ollama.url]
    # A one-off connection asked; nothing the gunicorn master could fork with.
    assert client.manager.connection_from_url(ollama.url).num_connections == 0
    assert ollama.requests


def test_a_dead_host_is_a_warning_naming_the_fix(dead_url, caplog):
    caplog.set_level(logging.INFO, logger="ollama_gateway")
    app = create_app(ollama_url=dead_url)
    assert app.extensions["ollama_gateway"].settings.ollama_url == dead_url
    assert gateway_lines(caplog) == [(
        logging.WARNING, "Ollama at %s does not answer (connection refused); set OLLAMA_HOST or "
        "OLLAMA_GATEWAY_OLLAMA_URL to where Ollama listens" % dead_url)]


def test_an_error_answer_is_a_warning(ollama, caplog):
    ollama.script("/api/version", error_reply(500, "boom"))
    caplog.set_level(logging.INFO, logger="ollama_gateway")
    assert check_hosts([ollama.url]) == {ollama.url: None}
    [(level, message)] = gateway_lines(caplog)
    assert level == logging.WARNING and ollama.url in message and "500: boom" in message


def test_every_host_is_checked_at_once(ollama, dead_url, silent_url, caplog):
    # Two hosts that keep the check waiting its full second: asked one after
    # the other they would take two.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        silent2 = "http://127.0.0.1:%d" % other.getsockname()[1]
        caplog.set_level(logging.INFO, logger="ollama_gateway")
        started = time.monotonic()
        create_app(ollama_url=ollama.url, upstreams={"a": silent_url, "b": silent2, "c": dead_url})
        elapsed = time.monotonic() - started
    assert elapsed < 1.8, elapsed
    lines = dict((message.split()[2], (level, message)) for level, message in gateway_lines(caplog))
    assert lines[ollama.url][0] == logging.INFO
    for url in (silent_url, silent2):
        assert lines[url] == (logging.WARNING, "Ollama at %s does not answer (no answer within "
                              "1 s); set OLLAMA_HOST or OLLAMA_GATEWAY_OLLAMA_URL to where "
                              "Ollama listens" % url)
    assert "(connection refused)" in lines[dead_url][1]


def test_the_check_can_be_turned_off(ollama, caplog):
    caplog.set_level(logging.INFO, logger="ollama_gateway")
    app = create_app(ollama_url=ollama.url, startup_check=False)
    assert app.extensions["ollama_gateway"].settings.ollama_url == ollama.url
    assert gateway_lines(caplog) == [] and ollama.requests == []


def test_each_app_checks(ollama, caplog):
    caplog.set_level(logging.INFO, logger="ollama_gateway")
    create_app(ollama_url=ollama.url)
    create_app(ollama_url=ollama.url)
    assert len(gateway_lines(caplog)) == 2
