"""/v1/responses over HTTP: the stored-response endpoints, key scoping, errors and the
event stream, against the in-process server and the Ollama emulator."""
import json

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import chat_line, error_reply, ndjson_reply
from ..schema_check import assert_matches
from ..servers import InProcessServer
from ..sse import iter_lines
from .shapes import assert_error

FN = {"type": "function", "name": "lookup", "strict": False,
      "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def servers(request, emulator, tmp_path_factory):
    """Gateways on one store (SQLite file, or a real redis-server): two open ones (as two
    workers or hosts would be), one with two keys; and one storing nothing."""
    if request.param == "sqlite":
        db = "sqlite:///" + str(tmp_path_factory.mktemp("store") / "responses.db")
    else:
        db = request.getfixturevalue("redis_url")
    apps = {"a": create_app(ollama_url=emulator.url, store=db, read_timeout=5),
            "b": create_app(ollama_url=emulator.url, store=db, read_timeout=5),
            "keyed": create_app(ollama_url=emulator.url, store=db, read_timeout=5,
                                api_keys="key-one,key-two"),
            "off": create_app(ollama_url=emulator.url, store="off", read_timeout=5)}
    running = {name: InProcessServer(app) for name, app in apps.items()}
    yield {name: server.url + "/v1" for name, server in running.items()}
    for server in running.values():
        server.stop()


def create(url, key=None, **body):
    headers = {"Authorization": "Bearer " + key} if key else {}
    return requests.post(url + "/responses", json=dict({"model": "llama3.2"}, **body),
                         headers=headers, timeout=10)


def events(resp):
    """Return the (event, data) pairs of a Responses stream, checking their framing."""
    out, name = [], None
    with resp:
        for line in iter_lines(resp.iter_content(chunk_size=None)):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                assert data["type"] == name
                out.append(data)
    return out


def test_create_is_stored_and_shared_by_every_worker_on_the_store(servers, ollama):
    resp = create(servers["a"], input="hello", instructions="Be brief.", metadata={"k": "v"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches("responses.response", body)
    assert body["output"][0]["content"][0]["text"] == "Echo: hello"
    assert (body["status"], body["store"], body["metadata"]) == ("completed", True, {"k": "v"})
    assert ollama.last("/api/chat").json["messages"][0] == {"role": "system",
                                                           "content": "Be brief."}
    # Another gateway process on the same store serves it.
    got = requests.get(servers["b"] + "/responses/" + body["id"], timeout=10)
    assert got.json() == body
    items = requests.get(servers["b"] + "/responses/%s/input_items" % body["id"], timeout=10)
    assert_matches("responses.input_items", items.json())
    assert [i["content"][0]["text"] for i in items.json()["data"]] == ["hello"]


def test_previous_response_id_sends_the_chain_upstream(servers, ollama):
    first = create(servers["a"], input="one").json()
    second = create(servers["a"], input="two", previous_response_id=first["id"]).json()
    create(servers["b"], input="three", previous_response_id=second["id"])
    assert [(m["role"], m["content"]) for m in ollama.last("/api/chat").json["messages"]] == [
        ("user", "one"), ("assistant", "Echo: one"), ("user", "two"), ("assistant", "Echo: two"),
        ("user", "three")]


def test_item_reference_is_read_from_the_store(servers, ollama):
    first = create(servers["a"], input="remember me").json()
    user_item = requests.get(servers["a"] + "/responses/%s/input_items" % first["id"],
                             timeout=10).json()["data"][0]
    resp = create(servers["a"], input=[{"type": "item_reference", "id": user_item["id"]},
                                       {"type": "item_reference",
                                        "id": first["output"][0]["id"]},
                                       {"role": "user", "content": "and now"}])
    assert resp.status_code == 200, resp.text
    assert [m["content"] for m in ollama.last("/api/chat").json["messages"]] == [
        "remember me", "Echo: remember me", "and now"]


def test_unknown_ids_are_404_and_nothing_goes_upstream(servers, ollama):
    assert_error(create(servers["a"], input="x", previous_response_id="resp_nope"), 404,
                 param="previous_response_id", code="previous_response_not_found")
    assert_error(create(servers["a"], input=[{"type": "item_reference", "id": "msg_nope"}]),
                 400, param="input[0].id", code="invalid_value")
    for method, path in (("GET", "/responses/resp_nope"), ("DELETE", "/responses/resp_nope"),
                         ("GET", "/responses/resp_nope/input_items"),
                         ("POST", "/responses/resp_nope/cancel")):
        assert_error(requests.request(method, servers["a"] + path, timeout=10), 404,
                     code="not_found")
    assert ollama.requests == []


def test_delete_cancel_and_store_false(servers, ollama):
    body = create(servers["a"], input="x").json()
    assert_error(requests.post(servers["a"] + "/responses/%s/cancel" % body["id"], timeout=10),
                 400, param="response_id")
    deleted = requests.delete(servers["a"] + "/responses/" + body["id"], timeout=10)
    assert deleted.json() == {"id": body["id"], "object": "response", "deleted": True}
    assert requests.get(servers["a"] + "/responses/" + body["id"], timeout=10).status_code == 404
    unstored = create(servers["a"], input="y", store=False).json()
    assert unstored["store"] is False
    assert requests.get(servers["a"] + "/responses/" + unstored["id"],
                        timeout=10).status_code == 404


def test_a_response_is_visible_only_to_its_key(servers, ollama):
    body = create(servers["keyed"], key="key-one", input="mine").json()
    url = servers["keyed"] + "/responses/" + body["id"]
    assert requests.get(url, headers={"Authorization": "Bearer key-one"},
                        timeout=10).status_code == 200
    other = requests.get(url, headers={"Authorization": "Bearer key-two"}, timeout=10)
    assert_error(other, 404, code="not_found")
    assert_error(create(servers["keyed"], key="key-two", input="x",
                        previous_response_id=body["id"]), 404,
                 param="previous_response_id", code="previous_response_not_found")
    # The same id on the open gateway (no keys) is not its either.
    assert requests.get(servers["a"] + "/responses/" + body["id"], timeout=10).status_code == 404


def test_store_off_refuses_previous_response_id(servers, ollama):
    body = create(servers["off"], input="x").json()
    assert body["store"] is False
    assert_error(create(servers["off"], input="x", previous_response_id=body["id"]), 400,
                 param="previous_response_id", code="store_disabled")
    assert ollama.requests[-1].json["messages"] == [{"role": "user", "content": "x"}]


def test_stream_frames_and_stored_result(servers, ollama):
    resp = create(servers["a"], input="stream me", stream=True, tools=[FN, {"type": "web_search"}])
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["X-Gateway-Ignored-Params"] == "tools[1] (web_search)"
    got = events(resp)
    for event in got:
        assert_matches("responses.stream_event", event)
    assert got[0]["type"] == "response.created" and got[-1]["type"] == "response.completed"
    final = got[-1]["response"]
    assert final["output"][0]["type"] == "function_call"  # the emulator calls the first tool
    assert "web_search" not in json.dumps(ollama.last("/api/chat").json["tools"])
    stored = requests.get(servers["b"] + "/responses/" + final["id"], timeout=10).json()
    assert stored == final


def test_mid_stream_error_is_response_failed_and_stored(servers, ollama):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "partial"),
                                             {"error": "model runner crashed"}]))
    got = events(create(servers["a"], input="x", stream=True))
    assert got[-1]["type"] == "response.failed"
    assert "model runner crashed" in got[-1]["response"]["error"]["message"]
    assert_matches("responses.stream_event", got[-1])
    stored = requests.get(servers["a"] + "/responses/" + got[-1]["response"]["id"], timeout=10)
    assert stored.json()["status"] == "failed"


def test_failure_before_the_stream_is_plain_json(servers, ollama):
    ollama.script("/api/chat", error_reply(503, "server busy"))
    resp = create(servers["a"], input="x", stream=True)
    assert_error(resp, 503, code="upstream_busy")
    assert_error(create(servers["a"], model="no-such-model", input="x", stream=True), 404,
                 param="model", code="model_not_found")


@pytest.mark.parametrize("body, param", [
    pytest.param({"input": [{"role": "user", "content": [{"type": "input_image",
                                                          "image_url": 5}]}]},
                 "input[0].content[0].image_url", id="schema-param-path"),
    pytest.param({"input": "x", "tools": [dict(FN, parameters={"type": 12})]},
                 "tools[0].parameters", id="tool-schema-invalid"),
    pytest.param({"input": "x", "text": {"format": {"type": "json_schema", "name": "s",
                                                    "schema": {"type": "nope"}}}},
                 "text.format.schema", id="format-schema-invalid"),
    pytest.param({"input": [{"type": "bogus"}]}, "input[0].type", id="unknown-item"),
])
def test_bad_requests_never_reach_ollama(servers, ollama, body, param):
    err = assert_error(create(servers["a"], **body), 400, param=param)
    assert err["type"] == "invalid_request_error"
    assert ollama.requests == []


def test_forced_tool_choice_returns_a_schema_valid_call(servers, ollama):
    resp = create(servers["a"], input="find cats", tools=[FN],
                  tool_choice={"type": "function", "name": "lookup"})
    (call,) = resp.json()["output"]
    assert (call["type"], call["name"]) == ("function_call", "lookup")
    assert isinstance(json.loads(call["arguments"]).get("q"), str)
    sent = ollama.last("/api/chat").json
    assert "tools" not in sent and sent["format"] == FN["parameters"]
