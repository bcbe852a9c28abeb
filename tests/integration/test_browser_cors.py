"""The official openai JS SDK in headless Chromium, on a page of another origin.

``tests/browser/index.html`` (served by ``tests/browser/static.py`` on its own
loopback port) imports the SDK's ESM build from ``tests/js/node_modules``
through an import map, lists models, completes and streams a chat, and tries a
wrong key. Chromium itself enforces CORS here: with the page's origin
configured every call works and the page reads our headers; without it the
browser blocks the calls and no request reaches Ollama.

Chromium is Debian's ``chromium`` package (``make system-tools`` installs it);
under CI a missing browser fails, elsewhere it skips.
"""
import json
import os
from urllib.parse import urlencode

import pytest

from ollama_gateway import create_app

from ..browser.chromium import Chromium, find_chromium, run_page
from ..browser.static import OPENAI_PACKAGE, StaticServer

pytestmark = pytest.mark.integration

KEY = "sk-browser"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = find_chromium()
    if executable is None:
        message = "chromium is not on PATH: install Debian's chromium (make system-tools does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert (OPENAI_PACKAGE / "index.mjs").is_file(), (
        "the openai npm package is not installed: run `npm ci` in tests/js (`make test` does)")
    home = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(executable, home / "profile", home / "chromium.log")
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def page_origin():
    server = StaticServer()
    yield server.origin
    server.stop()


def _open(browser, page_origin, base):
    out = run_page(browser, page_origin + "/index.html?" + urlencode({"base": base, "key": KEY}))
    assert "page_error" not in out, out
    return out


@pytest.mark.parametrize("configured", ["page", "*"])
def test_sdk_in_the_browser_with_the_origin_allowed(browser, page_origin, serve, ollama,
                                                    configured):
    origins = [page_origin] if configured == "page" else "*"
    base = serve(create_app(ollama_url=ollama.url, cors_origins=origins, api_keys=KEY,
                            store="off", startup_check=False)) + "/v1"
    out = _open(browser, page_origin, base)
    context = json.dumps(out, indent=1)
    assert out["origin"] == page_origin and not base.startswith(page_origin + "/")
    assert "llama3.2:latest" in out["models"].get("ids", []), context
    # Read through Access-Control-Expose-Headers.
    assert out["chat"].get("text") == "Echo: hello from the page", context
    assert out["chat"]["request_id"].startswith("req_") and out["chat"]["ignored"] == "user"
    assert out["stream"].get("text") == "Echo: stream to the page", context
    assert out["stream"]["chunks"] > 1, context
    # The 401 reached the page as an error it can read, not as a network failure.
    assert out["wrong_key"]["error"] == "AuthenticationError", context
    assert out["wrong_key"]["status"] == 401 and out["wrong_key"]["code"] == "invalid_api_key"
    assert out["wrong_key"]["request_id"].startswith("req_"), context
    assert json.loads(out["_dom"])["chat"] == out["chat"]
    chats = [json.loads(r.body) for r in ollama.requests if r.path == "/api/chat"]
    assert [c.get("stream") for c in chats] == [False, True], context


def test_browser_blocks_calls_from_an_origin_not_configured(browser, page_origin, serve,
                                                            ollama):
    base = serve(create_app(ollama_url=ollama.url, cors_origins=["https://app.example"],
                            api_keys=KEY, store="off", startup_check=False)) + "/v1"
    out = _open(browser, page_origin, base)
    context = json.dumps(out, indent=1)
    for step in ("models", "chat", "stream", "wrong_key"):
        assert out[step].get("error") == "APIConnectionError", context
        assert out[step]["status"] is None, context
    # The preflight got no Access-Control-Allow-Origin, so nothing else was sent.
    assert ollama.requests == [], context
    assert any("blocked by CORS policy" in line for line in out["_console"]), context
