"""CORS on the blueprint's routes: settings, preflights, actual requests, errors, streams.

Served for real (werkzeug over loopback), standalone and mounted in a host app.
The browser's side of the same rules is tests/integration/test_browser_cors.py.
"""
import json

import pytest
import requests
from flask import Flask

from ollama_gateway import OllamaGateway, create_app, cors
from ollama_gateway.config import KEYS, ConfigError, load_settings

from ..ollama_emulator import error_reply
from ..sse import iter_events, iter_lines

PAGE = "http://127.0.0.1:5173"
OTHER = "https://evil.example"
KEY = "sk-browser"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
#: What Chromium sends for the openai SDK's chat call from a page.
SDK_REQUEST_HEADERS = ("authorization,content-type,x-stainless-arch,x-stainless-lang,"
                       "x-stainless-os,x-stainless-package-version,x-stainless-retry-count,"
                       "x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout")
ACA = "Access-Control-"


# -- settings ----------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    pytest.param(None, None, id="unset"),
    pytest.param("", None, id="empty-is-unset"),
    pytest.param("*", ("*",), id="any"),
    pytest.param(" * ", ("*",), id="any-spaced"),
    pytest.param("http://a.test, https://B.test:8443", ("http://a.test", "https://b.test:8443"),
                 id="comma-separated-lowercased"),
    pytest.param('["http://a.test", "app://local"]', ("http://a.test", "app://local"),
                 id="json-array"),
    pytest.param(["http://a.test"], ("http://a.test",), id="python-list"),
])
def test_origins_setting(raw, expected):
    config = {} if raw is None else {"OLLAMA_GATEWAY_CORS_ORIGINS": raw}
    assert load_settings({}, config).cors_origins == expected


@pytest.mark.parametrize("raw, message", [
    pytest.param("http://a.test/", "no path or trailing slash", id="trailing-slash"),
    pytest.param("http://a.test/app", "no path", id="path"),
    pytest.param("a.test", "not an origin", id="no-scheme"),
    pytest.param("null", "null", id="null-origin"),
    pytest.param("*, http://a.test", "cannot be combined", id="star-and-more"),
    pytest.param("[]", "leave the key unset", id="empty-list"),
    pytest.param('["http://a.test", 1]', "list of origins", id="not-strings"),
])
def test_origins_setting_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError, match="OLLAMA_GATEWAY_CORS_ORIGINS.*" + message):
        load_settings({"OLLAMA_GATEWAY_CORS_ORIGINS": raw}, {})


def test_key_listed_and_keyword_form():
    assert "OLLAMA_GATEWAY_CORS_ORIGINS" in KEYS
    assert load_settings({}, {}, {"cors_origins": "*"}).cors_origins == ("*",)


@pytest.mark.parametrize("origin, origins, expected", [
    pytest.param(PAGE, None, None, id="off"),
    pytest.param(None, ("*",), None, id="no-origin-header"),
    pytest.param(PAGE, ("*",), "*", id="any"),
    pytest.param(PAGE, (PAGE,), PAGE, id="listed"),
    pytest.param("HTTP://127.0.0.1:5173", (PAGE,), "HTTP://127.0.0.1:5173", id="echoed-as-sent"),
    pytest.param(OTHER, (PAGE,), None, id="not-listed"),
    pytest.param(PAGE + ".evil", (PAGE,), None, id="no-prefix-match"),
])
def test_allowed_origin(origin, origins, expected):
    assert cors.allowed_origin(origin, origins) == expected


def test_allow_headers_cover_every_stainless_header_of_the_js_sdk():
    # Checked against the installed SDK by the browser test; pinned here so a
    # removal is a visible decision.
    allowed = {name.lower() for name in cors.ALLOW_HEADERS}
    assert set(SDK_REQUEST_HEADERS.split(",")) <= allowed
    assert {"openai-beta", "openai-organization", "openai-project", "x-request-id",
            "x-stainless-helper-method", "x-stainless-poll-helper",
            "x-stainless-custom-poll-interval"} <= allowed


# -- served ------------------------------------------------------------------------

def _host_app(ollama_url, **settings):
    app = Flask("host")

    @app.route("/")
    def home():
        return "host home"

    OllamaGateway(app, url_prefix="/api/openai", startup_check=False, ollama_url=ollama_url,
                  **settings)
    return app


@pytest.fixture(params=["standalone", "mounted"])
def gateway(request, serve, emulator):
    """``gateway(**settings)`` returns the base URL of a gateway served with those settings."""
    def start(**settings):
        if request.param == "standalone":
            return serve(create_app(ollama_url=emulator.url, startup_check=False,
                                    store="off", **settings)) + "/v1"
        return serve(_host_app(emulator.url, store="off", **settings)) + "/api/openai"
    return start


def preflight(url, origin=PAGE, method="POST", headers=SDK_REQUEST_HEADERS):
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(url, headers=sent, timeout=10)


def cors_headers(resp):
    return {k: v for k, v in resp.headers.items() if k.startswith(ACA)}


def test_off_by_default_no_cors_headers_at_all(gateway, ollama):
    base = gateway()
    resp = preflight(base + "/chat/completions")
    # The plain OPTIONS answer, as before CORS existed.
    assert resp.status_code == 200 and resp.headers["Allow"] == "POST, OPTIONS"
    assert cors_headers(resp) == {} and "Vary" not in resp.headers
    resp = requests.post(base + "/chat/completions", json=CHAT, headers={"Origin": PAGE},
                         timeout=10)
    assert resp.status_code == 200 and cors_headers(resp) == {}
    assert "Origin" not in resp.headers.get("Vary", "")


def _assert_preflight(resp, allow_origin, methods):
    assert resp.status_code == 204 and resp.content == b""
    assert resp.headers[ACA + "Allow-Origin"] == allow_origin
    assert resp.headers[ACA + "Allow-Methods"] == methods
    allowed = {h.strip().lower() for h in resp.headers[ACA + "Allow-Headers"].split(",")}
    assert set(SDK_REQUEST_HEADERS.split(",")) <= allowed
    assert {"openai-beta", "openai-organization", "openai-project", "x-request-id"} <= allowed
    assert resp.headers[ACA + "Max-Age"] == str(cors.MAX_AGE)
    assert "Origin" in resp.headers["Vary"]
    assert ACA + "Allow-Credentials" not in resp.headers
    assert ACA + "Expose-Headers" not in resp.headers


@pytest.mark.parametrize("origins, allow_origin", [
    pytest.param("*", "*", id="any"),
    pytest.param([OTHER, PAGE], PAGE, id="list"),
])
@pytest.mark.parametrize("path, method, methods", [
    pytest.param("chat/completions", "POST", "POST, OPTIONS", id="chat"),
    pytest.param("models", "GET", "GET, HEAD, OPTIONS", id="models"),
    pytest.param("models/hf.co/org/repo:Q4", "GET", "GET, HEAD, OPTIONS", id="model"),
    pytest.param("responses/resp_1", "DELETE", "GET, HEAD, DELETE, OPTIONS", id="response"),
])
def test_preflight_without_a_key(gateway, ollama, origins, allow_origin, path, method, methods):
    base = gateway(cors_origins=origins, api_keys=KEY)
    _assert_preflight(preflight(base + "/" + path, method=method), allow_origin, methods)
    assert ollama.requests == []


def test_preflight_from_an_origin_not_configured_gets_no_cors_headers(gateway, ollama):
    base = gateway(cors_origins=[PAGE], api_keys=KEY)
    resp = preflight(base + "/chat/completions", origin=OTHER)
    # 204, no key asked, but nothing that lets the browser go on.
    assert resp.status_code == 204 and resp.headers["Allow"] == "POST, OPTIONS"
    assert cors_headers(resp) == {}
    assert resp.headers["Vary"] == "Origin"


def test_preflight_on_an_unknown_path_is_the_json_404(gateway):
    base = gateway(cors_origins="*", api_keys=KEY)
    resp = preflight(base + "/chat/completion")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_url"
    assert resp.headers[ACA + "Allow-Origin"] == "*"


def test_plain_options_still_needs_the_key(gateway):
    base = gateway(cors_origins="*", api_keys=KEY)
    # Not a preflight (no Access-Control-Request-Method): the key check applies.
    resp = requests.options(base + "/models", headers={"Origin": PAGE}, timeout=10)
    assert resp.status_code == 401 and resp.headers[ACA + "Allow-Origin"] == "*"
    resp = requests.options(base + "/models", headers={"Authorization": "Bearer " + KEY},
                            timeout=10)
    assert resp.status_code == 200 and resp.headers["Allow"] == "GET, HEAD, OPTIONS"


def _assert_actual(resp, allow_origin):
    assert resp.headers[ACA + "Allow-Origin"] == allow_origin
    assert "Origin" in resp.headers["Vary"]
    exposed = [h.strip().lower() for h in resp.headers[ACA + "Expose-Headers"].split(",")]
    assert exposed == [
        "x-request-id", "x-gateway-ignored-params",
        "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
        "retry-after", "x-should-retry"]
    assert ACA + "Allow-Credentials" not in resp.headers
    assert ACA + "Allow-Methods" not in resp.headers


def _auth(origin=PAGE, key=KEY):
    return {"Origin": origin, "Authorization": "Bearer " + key}


@pytest.mark.parametrize("origins, allow_origin", [
    pytest.param("*", "*", id="any"), pytest.param([PAGE], PAGE, id="list")])
def test_actual_requests_carry_cors_headers(gateway, ollama, origins, allow_origin):
    base = gateway(cors_origins=origins, api_keys=KEY)
    resp = requests.get(base + "/models", headers=_auth(), timeout=10)
    assert resp.status_code == 200
    _assert_actual(resp, allow_origin)
    resp = requests.post(base + "/chat/completions", json=dict(CHAT, user="u1"),
                         headers=_auth(), timeout=10)
    assert resp.status_code == 200 and resp.headers["X-Gateway-Ignored-Params"]
    _assert_actual(resp, allow_origin)
    # The open endpoints too.
    _assert_actual(requests.get(base + "/healthz", headers={"Origin": PAGE}, timeout=10),
                   allow_origin)


def test_the_actual_request_still_needs_the_key(gateway, ollama):
    base = gateway(cors_origins=[PAGE], api_keys=KEY)
    for headers in ({"Origin": PAGE}, _auth(key="wrong")):
        resp = requests.post(base + "/chat/completions", json=CHAT, headers=headers, timeout=10)
        # Readable by the page: the SDK raises AuthenticationError, not a network error.
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
        _assert_actual(resp, PAGE)
    assert ollama.requests == []


def test_errors_carry_cors_headers(gateway, ollama):
    base = gateway(cors_origins=[PAGE], api_keys=KEY)
    resp = requests.post(base + "/chat/completion", json=CHAT, headers=_auth(), timeout=10)
    assert resp.status_code == 404
    _assert_actual(resp, PAGE)
    resp = requests.get(base + "/chat/completions", headers=_auth(), timeout=10)
    assert resp.status_code == 405
    _assert_actual(resp, PAGE)
    ollama.script("/api/chat", error_reply(500, "the GPU fell over"))
    resp = requests.post(base + "/chat/completions", json=CHAT, headers=_auth(), timeout=10)
    assert resp.status_code >= 500
    _assert_actual(resp, PAGE)


def test_sse_stream_carries_cors_headers(gateway, ollama):
    base = gateway(cors_origins=[PAGE], api_keys=KEY)
    resp = requests.post(base + "/chat/completions", json=dict(CHAT, stream=True),
                         headers=_auth(), stream=True, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    _assert_actual(resp, PAGE)
    with resp:
        events = list(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if json.loads(e).get("choices"))
    assert text == "Echo: Hi"


def test_disallowed_origin_gets_the_answer_without_cors_headers(gateway, ollama):
    base = gateway(cors_origins=[PAGE])
    resp = requests.get(base + "/models", headers={"Origin": OTHER}, timeout=10)
    # Served (CORS is no access control: curl sends no Origin), unreadable by the page.
    assert resp.status_code == 200 and cors_headers(resp) == {}
    assert resp.headers["Vary"] == "Origin"


def test_host_pages_get_no_cors_headers(serve, emulator):
    url = serve(_host_app(emulator.url, store="off", cors_origins="*"))
    resp = requests.get(url + "/", headers={"Origin": PAGE}, timeout=10)
    assert resp.text == "host home" and cors_headers(resp) == {}
    resp = preflight(url + "/")
    assert cors_headers(resp) == {}
