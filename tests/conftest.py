"""Shared fixtures: the Ollama emulator and the gateway served for real."""
import pytest

from ollama_gateway import create_app

from .ollama_emulator import OllamaEmulator
from .servers import Gunicorn, InProcessServer


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
def gateway_url(emulator):
    """Base URL (…/v1) of the gateway app served in-process over loopback."""
    server = InProcessServer(create_app(ollama_url=emulator.url, read_timeout=5))
    yield server.url + "/v1"
    server.stop()


@pytest.fixture(scope="session")
def gunicorn_url(emulator, tmp_path_factory):
    """Base URL (…/v1) of ``ollama_gateway.wsgi:app`` under gunicorn with the deploy config."""
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log",
                      env={"OLLAMA_HOST": emulator.url, "OLLAMA_GATEWAY_READ_TIMEOUT": "5"})
    yield server.url + "/v1"
    server.stop()
