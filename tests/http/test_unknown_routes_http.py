"""Unknown paths and wrong methods: OpenAI-shaped 404/405 under the API prefix, standalone
and mounted in a host app whose own HTML error pages must stay as they are."""
import pytest
import requests
from flask import Flask

from ollama_gateway import OllamaGateway, create_app

from .shapes import assert_error

SUPPORTED = ["POST chat/completions", "POST completions", "POST embeddings", "POST responses",
             "GET responses/{{id}}", "DELETE responses/{{id}}", "GET responses/{{id}}/input_items",
             "GET models", "GET models/{{model}}"]


def host_app(ollama_url):
    """A host app with its own pages and an HTML 404/405, the API under /api/llm/v1."""
    app = Flask("host")

    @app.route("/")
    def home():
        return "<h1>Home</h1>"

    @app.route("/api/llm/status")
    def status():
        return "ok"

    @app.errorhandler(404)
    def html_404(exc):
        return "<html><body>Host page not found</body></html>", 404

    @app.errorhandler(405)
    def html_405(exc):
        return "<html><body>Host says no</body></html>", 405

    OllamaGateway(app, url_prefix="/api/llm/v1", ollama_url=ollama_url)
    return app


@pytest.fixture(scope="module")
def servers(serve_module, emulator):
    """Base URLs: the standalone app's root and the host app's root."""
    return {"standalone": serve_module(create_app(ollama_url=emulator.url)),
            "mounted": serve_module(host_app(emulator.url))}


PREFIX = {"standalone": "/v1/", "mounted": "/api/llm/v1/"}


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("method, path, hint", [
    pytest.param("POST", "chat/completion", "POST {0}chat/completions", id="typo"),
    pytest.param("POST", "v1/chat/completions", "POST {0}chat/completions", id="v1-twice"),
    pytest.param("POST", "chat/completions/", "POST {0}chat/completions", id="trailing-slash"),
    pytest.param("GET", "model", "GET {0}models", id="singular"),
    pytest.param("POST", "embedding", "POST {0}embeddings", id="embedding"),
    pytest.param("DELETE", "files/abc", None, id="unsupported-endpoint"),
    pytest.param("GET", "", None, id="prefix-itself"),
])
def test_unknown_path_is_openai_404(servers, ollama, mode, method, path, hint):
    prefix = PREFIX[mode]
    resp = requests.request(method, servers[mode] + prefix + path, timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert err["type"] == "invalid_request_error"
    assert err["message"].startswith("Invalid URL (%s %s%s)" % (method, prefix, path))
    assert "Supported routes under %s: " % prefix in err["message"]
    for route in SUPPORTED:
        assert route.format() in err["message"]
    if hint:
        assert "Did you mean %s?" % hint.format(prefix) in err["message"]
    else:
        assert "Did you mean" not in err["message"]
    assert resp.headers["X-Request-Id"].startswith("req_")
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("method, path, allowed", [
    pytest.param("GET", "chat/completions", "POST", id="get-chat"),
    pytest.param("PUT", "completions", "POST", id="put-completions"),
    pytest.param("GET", "embeddings", "POST", id="get-embeddings"),
    pytest.param("POST", "models", "GET", id="post-models"),
    pytest.param("DELETE", "models/hf.co/org/repo:Q4_K_M", "GET", id="delete-model"),
    pytest.param("GET", "responses", "POST", id="get-responses"),
    pytest.param("PUT", "responses/resp_1", "GET", id="put-response"),
    pytest.param("POST", "responses/resp_1/input_items", "GET", id="post-input-items"),
    pytest.param("GET", "responses/resp_1/cancel", "POST", id="get-cancel"),
])
def test_wrong_method_is_openai_405(servers, ollama, mode, method, path, allowed):
    resp = requests.request(method, servers[mode] + PREFIX[mode] + path, timeout=10)
    err = assert_error(resp, 405, code="method_not_allowed")
    assert "use %s" % allowed in err["message"]
    assert resp.headers["Allow"].split(", ")[0] == allowed
    assert ollama.requests == []


def test_standalone_outside_prefix_hints_at_v1(servers):
    resp = requests.post(servers["standalone"] + "/chat/completions", timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert "Did you mean POST /v1/chat/completions?" in err["message"]
    assert_error(requests.get(servers["standalone"] + "/", timeout=10), 404)


def test_host_pages_and_errors_unchanged(servers):
    base = servers["mounted"]
    assert requests.get(base + "/", timeout=10).text == "<h1>Home</h1>"
    assert requests.get(base + "/api/llm/status", timeout=10).text == "ok"
    # The gateway's converter is for its own rules: the host's paths, newlines
    # included, still get the host's page.
    for path in ("/nope", "/api/llm/other", "/api/llm/v2/chat/completions", "/v1/models",
                 "/nope%0d%0aX-Injected:%20y", "/api/llm/v1%0a"):
        resp = requests.get(base + path, timeout=10)
        assert (resp.status_code, resp.text) == (
            404, "<html><body>Host page not found</body></html>"), path
    resp = requests.post(base + "/api/llm/status", timeout=10)
    assert (resp.status_code, resp.text) == (405, "<html><body>Host says no</body></html>")


def test_mounted_api_still_works(servers):
    resp = requests.get(servers["mounted"] + "/api/llm/v1/models", timeout=10)
    assert resp.status_code == 200 and resp.json()["object"] == "list"
    resp = requests.options(servers["mounted"] + "/api/llm/v1/chat/completions", timeout=10)
    assert resp.status_code == 200 and resp.headers["Allow"] == "POST, OPTIONS"
