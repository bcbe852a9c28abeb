"""The blueprint mounted in someone else's Flask app: its own routes, HTML
error pages and CSRF protection (Flask-WTF), the API under /api/llm/v1."""
import json

import openai
import pytest
import requests
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from ollama_gateway import OllamaGateway

from ..servers import InProcessServer
from ..sse import iter_events, iter_lines

PREFIX = "/api/llm/v1"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}


def host_app(ollama_url, exempt=True):
    app = Flask("host")
    app.config.update(SECRET_KEY="host-secret", OLLAMA_GATEWAY_OLLAMA_URL=ollama_url)
    csrf = CSRFProtect(app)

    @app.route("/")
    def home():
        return "<h1>Host home</h1>"

    @app.route("/form", methods=["POST"])
    def form():
        return "<p>saved</p>"

    @app.errorhandler(404)
    def host_404(error):
        return "<h1>Host page not found</h1>", 404

    gateway = OllamaGateway(app, url_prefix=PREFIX, startup_check=False)
    if exempt:
        csrf.exempt(gateway.blueprint)  # the one line a CSRF-protected host needs
    return app


@pytest.fixture
def host(emulator):
    server = InProcessServer(host_app(emulator.url))
    yield server.url
    server.stop()


def test_sdk_works_under_the_host_prefix(host, ollama):
    with openai.OpenAI(base_url=host + PREFIX, api_key="unused", max_retries=0) as sdk:
        completion = sdk.chat.completions.create(**CHAT)
        chunks = list(sdk.chat.completions.create(stream=True, **CHAT))
    assert completion.choices[0].message.content == "Echo: Hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: Hi"


def test_host_pages_csrf_and_errors_are_unchanged(host):
    assert requests.get(host + "/", timeout=10).text == "<h1>Host home</h1>"
    missing = requests.get(host + "/nope", timeout=10)
    assert (missing.status_code, missing.text) == (404, "<h1>Host page not found</h1>")
    refused = requests.post(host + "/form", data={"x": "1"}, timeout=10)
    assert refused.status_code == 400 and "CSRF" in refused.text
    assert refused.headers["Content-Type"].startswith("text/html")


def test_gateway_errors_stay_json_inside_the_host(host, ollama):
    resp = requests.get(host + PREFIX + "/nope", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_url"
    bad = requests.post(host + PREFIX + "/chat/completions", data=b"{oops", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    stream = requests.post(host + PREFIX + "/chat/completions", json=dict(CHAT, stream=True),
                           stream=True, timeout=10)
    events = list(iter_events(iter_lines(stream.iter_content(chunk_size=None))))
    assert events[-1] == "[DONE]" and json.loads(events[0])["choices"][0]["delta"]["role"]


def test_without_the_exemption_csrf_refuses_api_calls(emulator, ollama):
    server = InProcessServer(host_app(emulator.url, exempt=False))
    try:
        resp = requests.post(server.url + PREFIX + "/chat/completions", json=CHAT, timeout=10)
    finally:
        server.stop()
    # Still in OpenAI's shape (the blueprint's handler), but refused: the
    # README's exemption line is needed.
    assert resp.status_code == 400 and "CSRF" in resp.json()["error"]["message"]
    assert ollama.requests == []
