"""Shared fixtures: the Ollama emulator and the gateway served for real."""
import socket
import threading

import pytest
from werkzeug.serving import make_server

from ollama_gateway import create_app

from .ollama_emulator import OllamaEmulator, model_entry
from .redis_server import redis_url  # noqa: F401  (a fixture, shared by the suite)
from .servers import Gunicorn, InProcessServer

#: The models of the second emulated host: one also on the first (to check
#: routing), one only here.
SECOND_HOST_MODELS = [
    model_entry("qwen3:latest", "qwen3", "8.2B", "Q4_K_M", ["completion", "tools", "thinking"],
                40960, 4096, 5225376047),
    model_entry("bge-m3:latest", "bert", "567M", "F16", ["embedding"], 8192, 1024, 1157672605,
                modified_at="2026-07-01T12:00:00Z"),
]


@pytest.fixture(scope="session")
def emulator():
    with OllamaEmulator() as emu:
        yield emu


@pytest.fixture
def ollama(emulator):
    """The emulator, reset for this test: default behaviour, nothing recorded."""
    emulator.reset()
    yield emulator


@pytest.fixture(scope="session")
def gateway_url(emulator, tmp_path_factory):
    """Base URL (…/v1) of the gateway app served in-process over loopback."""
    store = "sqlite:///%s" % (tmp_path_factory.mktemp("store") / "gateway.db")
    server = InProcessServer(create_app(ollama_url=emulator.url, read_timeout=5, store=store))
    yield server.url + "/v1"
    server.stop()


@pytest.fixture(scope="session")
def gunicorn_url(emulator, tmp_path_factory):
    """Base URL (…/v1) of ``ollama_gateway.wsgi:app`` under gunicorn with the deploy config."""
    logs = tmp_path_factory.mktemp("gunicorn")
    server = Gunicorn(logs / "gunicorn.log",
                      env={"OLLAMA_HOST": emulator.url, "OLLAMA_GATEWAY_READ_TIMEOUT": "5",
                           "OLLAMA_GATEWAY_STORE": "sqlite:///%s" % (logs / "gateway.db")})
    yield server.url + "/v1"
    server.stop()


@pytest.fixture(scope="session")
def emulator2():
    """A second Ollama host (``SECOND_HOST_MODELS``), for routing by model."""
    with OllamaEmulator(models=SECOND_HOST_MODELS) as emu:
        yield emu


@pytest.fixture
def ollama2(emulator2):
    """The second host, reset for this test."""
    emulator2.reset()
    yield emulator2


def _serve_apps():
    servers = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        # A short poll: shutdown() waits for it, once per test.
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  daemon=True)
        thread.start()
        servers.append(server)
        return "http://127.0.0.1:%d" % server.server_port

    return start, servers


@pytest.fixture
def serve():
    """Serve Flask apps in-process for this test: ``serve(app)`` returns the server's base URL."""
    start, servers = _serve_apps()
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def serve_module():
    """Like ``serve``, for apps shared by the tests of one module."""
    start, servers = _serve_apps()
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url():
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % sock.getsockname()[1]
