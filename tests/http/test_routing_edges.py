"""Routing at the edges: paths with control characters, very long paths, OPTIONS on
every route; standalone and mounted in a host app (``test_unknown_routes_http``)."""
import re

import pytest
import requests
from flask import Flask

from ollama_gateway import APIError, OllamaGateway, create_app
from ollama_gateway.fallback import CONVERTER, MAX_ECHO, shown

from .shapes import assert_error
from .test_unknown_routes_http import PREFIX, host_app

ELLIPSIS = "\u2026"


@pytest.fixture(scope="module")
def servers(serve_module, emulator):
    """Base URLs: the standalone app's root and the host app's root."""
    return {"standalone": serve_module(create_app(ollama_url=emulator.url)),
            "mounted": serve_module(host_app(emulator.url))}


def echoed(message):
    """Return the ``METHOD PATH`` a 404 message repeats."""
    return re.match(r"Invalid URL \((.*?)\)\.(?: |$)", message, re.S).group(1)


# -- shown(): what a message repeats of client input ---------------------------

@pytest.mark.parametrize("raw, expected", [
    pytest.param("/v1/models", "/v1/models", id="plain"),
    pytest.param("a\r\nX-Injected: y", "a\\r\\nX-Injected: y", id="crlf"),
    pytest.param("a\x00b\tc\x7f", "a\\x00b\\tc\\x7f", id="nul-tab-del"),
    pytest.param("\x85\u2028\u202e", "\\x85\\u2028\\u202e", id="c1-separator-bidi"),
    pytest.param("a\\nb", "a\\\\nb", id="backslash-stays-unambiguous"),
    pytest.param("caf\u00e9 \ufffd \u6a21\u578b", "caf\u00e9 \ufffd \u6a21\u578b", id="printable"),
    pytest.param("a" * MAX_ECHO, "a" * MAX_ECHO, id="at-the-cap"),
    pytest.param("a" * (MAX_ECHO + 1), "a" * MAX_ECHO + ELLIPSIS, id="over-the-cap"),
    pytest.param("a" * 100000, "a" * MAX_ECHO + ELLIPSIS, id="100k"),
    # An escape is never cut in half: it goes whole or not at all.
    pytest.param("a" * (MAX_ECHO - 2) + "\n\n", "a" * (MAX_ECHO - 2) + "\\n" + ELLIPSIS,
                 id="escape-at-the-cap"),
    pytest.param("\x00" * 1000, "\\x00" * (MAX_ECHO // 4) + ELLIPSIS, id="escapes-count"),
])
def test_shown_escapes_and_caps(raw, expected):
    assert shown(raw) == expected


@pytest.mark.parametrize("size, expected", [
    pytest.param(10, "m" * 10, id="short"),
    pytest.param(1000, "m" * 1000, id="at-the-cap"),
    pytest.param(1001, "m" * 999 + ELLIPSIS, id="over-the-cap"),
    pytest.param(100000, "m" * 999 + ELLIPSIS, id="100k"),
])
def test_to_body_caps_any_message(size, expected):
    error = APIError("m" * size, param="p", code="c")
    assert error.to_body() == {"error": {"message": expected, "type": "server_error",
                                         "param": "p", "code": "c"}}
    assert error.message == "m" * size  # the exception itself keeps what it was given


# -- paths with control characters ---------------------------------------------

@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path, shown_path", [
    pytest.param("x%0d%0aX-Injected:%20y", "x\\r\\nX-Injected: y", id="crlf"),
    pytest.param("%0a", "\\n", id="lf"),
    pytest.param("chat/completions%0d", "chat/completions\\r", id="cr-after-route"),
    pytest.param("chat/completions%0d%0a", "chat/completions\\r\\n", id="crlf-after-route"),
    pytest.param("a%00b", "a\\x00b", id="nul"),
    pytest.param("a%09b", "a\\tb", id="tab"),
    pytest.param("%7f%c2%85%e2%80%ae", "\\x7f\\x85\\u202e", id="del-c1-bidi"),
    pytest.param("%ff", "\ufffd", id="invalid-utf8"),
    pytest.param("/models%0d%0aX-Injected:%20y", "/models\\r\\nX-Injected: y",
                 id="double-slash"),  # no merge-slashes redirect with a Location
])
def test_control_characters_get_json_404(servers, ollama, mode, method, path, shown_path):
    resp = requests.request(method, servers[mode] + PREFIX[mode] + path, timeout=10,
                            allow_redirects=False)
    err = assert_error(resp, 404, code="unknown_url")
    assert echoed(err["message"]) == "%s %s%s" % (method, PREFIX[mode], shown_path)
    assert not re.search("[\x00-\x1f\x7f-\x9f]", err["message"])
    # Nothing from the path reaches a header.
    assert "X-Injected" not in resp.headers and "Location" not in resp.headers
    assert set(resp.headers) <= {"Server", "Date", "Content-Type", "Content-Length",
                                 "Connection", "X-Request-Id", "x-should-retry"}
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("name, shown_name", [
    pytest.param("x%0d%0aX-Injected:%20y", "x\\r\\nX-Injected: y", id="crlf"),
    pytest.param("a%0ab", "a\\nb", id="lf"),
])
def test_newline_in_a_model_name(servers, ollama, mode, name, shown_name):
    url = servers[mode] + PREFIX[mode] + "models/" + name
    # models/{model} takes GET, but its converter refused the name: the path is
    # wrong, not the method.
    resp = requests.get(url, timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert echoed(err["message"]) == "GET %smodels/%s" % (PREFIX[mode], shown_name)
    assert "X-Injected" not in resp.headers
    resp = requests.post(url, timeout=10)
    err = assert_error(resp, 405, code="method_not_allowed")
    assert err["message"] == "Method POST is not allowed on %smodels/%s; use GET." % (
        PREFIX[mode], shown_name)
    assert resp.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert "X-Injected" not in resp.headers
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
def test_double_slash_names_the_route(servers, ollama, mode):
    resp = requests.post(servers[mode] + PREFIX[mode] + "/chat/completions", timeout=10,
                         allow_redirects=False)
    err = assert_error(resp, 404, code="unknown_url")
    assert "Did you mean POST %schat/completions?" % PREFIX[mode] in err["message"]
    assert ollama.requests == []


def test_outside_the_standalone_prefix_too(servers, ollama):
    resp = requests.get(servers["standalone"] + "/x%0d%0aX-Injected:%20y", timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert echoed(err["message"]) == "GET /x\\r\\nX-Injected: y"
    assert "X-Injected" not in resp.headers
    assert ollama.requests == []


# -- long paths ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_3kb_path_is_echoed_capped(servers, ollama, mode, method):
    path = PREFIX[mode] + "x" * 3000
    resp = requests.request(method, servers[mode] + path, timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert echoed(err["message"]) == "%s %s" % (method, path[:MAX_ECHO] + ELLIPSIS)
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("escape, char, count", [
    pytest.param("%0a", "\n", 1000, id="3kb-of-lf"),
    pytest.param("%00", "\x00", 60, id="short-path-long-escapes"),
])
def test_escapes_count_towards_the_cap(servers, ollama, mode, escape, char, count):
    resp = requests.get(servers[mode] + PREFIX[mode] + escape * count, timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert echoed(err["message"]) == "GET " + shown(PREFIX[mode] + char * count)
    assert echoed(err["message"]).endswith(ELLIPSIS)
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
def test_3kb_model_path_405_is_capped(servers, ollama, mode):
    path = PREFIX[mode] + "models/" + "m" * 3000
    resp = requests.delete(servers[mode] + path, timeout=10)
    err = assert_error(resp, 405, code="method_not_allowed")
    assert err["message"] == "Method DELETE is not allowed on %s; use GET." % (
        path[:MAX_ECHO] + ELLIPSIS)
    assert resp.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
def test_100kb_path_stops_at_the_server(servers, ollama, mode):
    # werkzeug's server (http.server) refuses a request line over 64 KiB
    # before any app runs, as gunicorn (8 KiB at most) and nginx do: the
    # 100 KB answer below is the app's, called without a server.
    resp = requests.get(servers[mode] + PREFIX[mode] + "x" * 100000, timeout=10)
    assert resp.status_code == 414
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
def test_100kb_path_through_the_app(emulator, ollama, mode):
    app = create_app(ollama_url=emulator.url) if mode == "standalone" else host_app(emulator.url)
    ollama.reset()  # whatever building the app asked Ollama is not the request's
    path = PREFIX[mode] + "x" * 100000
    resp = app.test_client().get(path)
    assert (resp.status_code, resp.content_type) == (404, "application/json")
    err = resp.get_json()["error"]
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", "unknown_url",
                                                        None)
    assert err["message"] == "Invalid URL (GET %s)." % (path[:MAX_ECHO] + ELLIPSIS)
    assert ollama.requests == []


# -- OPTIONS ------------------------------------------------------------------------

ROUTES = [
    pytest.param("chat/completions", "POST, OPTIONS", id="chat"),
    pytest.param("completions", "POST, OPTIONS", id="completions"),
    pytest.param("embeddings", "POST, OPTIONS", id="embeddings"),
    pytest.param("responses", "POST, OPTIONS", id="responses"),
    pytest.param("responses/resp_1", "GET, HEAD, DELETE, OPTIONS", id="response"),
    pytest.param("responses/resp_1/input_items", "GET, HEAD, OPTIONS", id="input-items"),
    pytest.param("responses/resp_1/cancel", "POST, OPTIONS", id="cancel"),
    pytest.param("models", "GET, HEAD, OPTIONS", id="models"),
    pytest.param("models/llama3.2", "GET, HEAD, OPTIONS", id="model"),
    pytest.param("models/hf.co/org/repo:Q4_K_M", "GET, HEAD, OPTIONS", id="model-slashes"),
    pytest.param("healthz", "GET, HEAD, OPTIONS", id="healthz"),
    pytest.param("readyz", "GET, HEAD, OPTIONS", id="readyz"),
]


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("path, allow", ROUTES)
def test_options_lists_what_the_route_takes(servers, ollama, mode, path, allow):
    resp = requests.options(servers[mode] + PREFIX[mode] + path, timeout=10)
    assert (resp.status_code, resp.content) == (200, b"")
    assert resp.headers["Allow"] == allow
    assert resp.headers["X-Request-Id"].startswith("req_")
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("path, allow", ROUTES)
def test_405_allow_agrees_with_options(servers, ollama, mode, path, allow):
    method = "PATCH"  # no route takes it
    resp = requests.request(method, servers[mode] + PREFIX[mode] + path, timeout=10)
    assert_error(resp, 405, code="method_not_allowed")
    assert resp.headers["Allow"] == allow
    assert ollama.requests == []


@pytest.mark.parametrize("mode", ["standalone", "mounted"])
@pytest.mark.parametrize("path", [
    pytest.param("", id="prefix-itself"),
    pytest.param("nope", id="unknown"),
    pytest.param("chat/completion", id="typo"),
    pytest.param("chat/completions/", id="trailing-slash"),
    pytest.param("responses/a/b", id="too-deep"),
    pytest.param("models/a%0ab", id="lf-in-model"),
    pytest.param("chat/completions%0d%0a", id="crlf"),
])
def test_options_on_unknown_paths_is_json_404(servers, ollama, mode, path):
    resp = requests.options(servers[mode] + PREFIX[mode] + path, timeout=10)
    assert_error(resp, 404, code="unknown_url")
    assert "Allow" not in resp.headers
    assert ollama.requests == []


def test_options_outside_the_standalone_prefix(servers):
    resp = requests.options(servers["standalone"] + "/chat/completions", timeout=10)
    err = assert_error(resp, 404, code="unknown_url")
    assert "Did you mean POST /v1/chat/completions?" in err["message"]


def test_options_agrees_with_the_url_map(emulator, serve, ollama):
    """Every rule of the blueprint: OPTIONS lists exactly the methods werkzeug routes there."""
    app = create_app(ollama_url=emulator.url)
    base = serve(app)
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("ollama_gateway.")
             and rule.endpoint != "ollama_gateway.unknown_route"]
    assert len(rules) == 12
    for rule in rules:
        path = re.sub(r"<[^>]+>", "x1", rule.rule)
        routed = set().union(*(r.methods for r in rules if r.rule == rule.rule))
        resp = requests.options(base + path, timeout=10)
        assert resp.status_code == 200, path
        assert set(resp.headers["Allow"].split(", ")) == routed, path


# -- the host app ----------------------------------------------------------------------

def test_the_converter_is_the_one_thing_added_to_the_host_map(emulator):
    app = Flask("host")
    before = dict(app.url_map.converters)
    OllamaGateway(app, url_prefix="/api/llm/v1", ollama_url=emulator.url)
    after = dict(app.url_map.converters)
    assert set(after) - set(before) == {CONVERTER}
    assert {name: after[name] for name in before} == before


def test_a_host_converter_of_the_same_name_is_refused(emulator):
    app = Flask("host")
    app.url_map.converters[CONVERTER] = type(app.url_map.converters["path"])
    with pytest.raises(RuntimeError, match=CONVERTER):
        OllamaGateway(app, ollama_url=emulator.url)
