"""The bundled OpenAI schemas and the errors ``schemas.validate`` raises."""
import hashlib
import json
import pathlib
import re

import pytest

from ollama_gateway import errors, schemas

SCHEMA_DIR = pathlib.Path(__file__).resolve().parents[2] / "schemas"
MANIFEST = json.loads((SCHEMA_DIR / "manifest.json").read_text(encoding="utf-8"))
NAMES = sorted(name[:-len(".json")] for name in MANIFEST["files"])


def chat(*messages: dict, **fields: object) -> dict:
    """Return a chat request with ``messages`` (a user "Hi" if none)."""
    return dict({"model": "llama3.2", "messages": list(messages) or [user("Hi")]}, **fields)


def user(content: object) -> dict:
    return {"role": "user", "content": content}


PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}

VALID = [
    pytest.param("chat_completions.request", chat(), id="chat-minimal"),
    pytest.param("chat_completions.request", chat(
        {"role": "system", "content": "Use tools."},
        user("Weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        tools=[WEATHER], tool_choice="auto", stream=True,
        stream_options={"include_usage": True}), id="chat-tool-conversation"),
    pytest.param("chat_completions.request", chat(user([
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}])),
        id="chat-image-data-urls"),
    pytest.param("chat_completions.request", chat(response_format={
        "type": "json_schema", "json_schema": {
            "name": "answer", "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}),
        id="chat-json-schema"),
    pytest.param("chat_completions.request", chat(
        {"role": "user", "content": "Hi", "id": "msg_1", "opts": {}},
        keep_alive="5m", options={"num_ctx": 8192}), id="chat-unknown-keys"),
    pytest.param("chat_completions.request", chat(
        temperature=None, top_p=None, top_logprobs=None, max_tokens=None, n=None, stop=None,
        seed=None, frequency_penalty=None, stream_options=None, reasoning_effort=None),
        id="chat-nullable-fields"),
    pytest.param("chat_completions.request", chat(stop=["\n", "END"], n=1, temperature=0.7,
                                                  max_completion_tokens=64, seed=42),
        id="chat-options"),
    pytest.param("completions.request", {"model": "m", "prompt": ["a", "b"], "best_of": 20,
                                         "suffix": None, "raw": True}, id="completion"),
    pytest.param("embeddings.request", {"model": "m", "input": ["a", "b"],
                                        "encoding_format": "base64", "keep_alive": "1m"},
        id="embeddings-unknown-key"),
    pytest.param("embeddings.request", {"model": "m", "input": [[1, 2], [3]], "dimensions": 8},
        id="embeddings-tokens"),
]

TOOL_WITHOUT_NAME = {"type": "function", "function": {"parameters": {"type": "object"}}}
INVALID = [
    pytest.param("chat_completions.request", chat({"role": "wizard", "content": "Hi"}),
                 "messages[0].role", "invalid_value", id="role-wizard"),
    pytest.param("chat_completions.request", chat({"role": "system", "content": "x"},
                                                  {"role": "user"}),
                 "messages[1].content", "missing_required_parameter", id="missing-content"),
    pytest.param("chat_completions.request", chat(temperature=5),
                 "temperature", "invalid_value", id="temperature-5"),
    pytest.param("chat_completions.request", chat(temperature="0.7"),
                 "temperature", "invalid_type", id="temperature-string"),
    pytest.param("chat_completions.request", chat(n=0), "n", "invalid_value", id="n-0"),
    pytest.param("chat_completions.request", chat(tools=[{"type": "retrieval"}]),
                 "tools[0].type", "invalid_value", id="tool-type-retrieval"),
    pytest.param("chat_completions.request", chat(tools=[WEATHER, TOOL_WITHOUT_NAME]),
                 "tools[1].function.name", "missing_required_parameter", id="tool-without-name"),
    pytest.param("chat_completions.request",
                 chat(user([{"type": "image_url", "image_url": "https://x.test/a.png"}])),
                 "messages[0].content[0].image_url", "invalid_type", id="image-url-string"),
    pytest.param("chat_completions.request", chat(
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}),
                 "messages[0].content[0].type", "invalid_value", id="image-in-system"),
    pytest.param("chat_completions.request", chat(
        {"role": "developer", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}),
                 "messages[0].content[0].type", "invalid_value", id="image-in-developer"),
    pytest.param("chat_completions.request", chat(
        user([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}])),
                 "messages[0].content[1].image_url.url", "missing_required_parameter",
                 id="image-without-url"),
    pytest.param("chat_completions.request", chat(response_format={
        "type": "json_schema", "json_schema": {"schema": {"type": "object"}}}),
                 "response_format.json_schema.name", "missing_required_parameter",
                 id="json-schema-without-name"),
    pytest.param("chat_completions.request", chat(tool_choice="any"),
                 "tool_choice", "invalid_value", id="tool-choice-any"),
    pytest.param("chat_completions.request", chat(stop=["a", "b", "c", "d", "e"]),
                 "stop", "invalid_value", id="stop-5-items"),
    pytest.param("chat_completions.request", chat(stop=7),
                 "stop", "invalid_type", id="stop-number"),
    pytest.param("chat_completions.request", {"messages": [user("Hi")]},
                 "model", "missing_required_parameter", id="missing-model"),
    pytest.param("chat_completions.request", chat(messages="Hi"),
                 "messages", "invalid_type", id="messages-string"),
    pytest.param("chat_completions.request", chat(messages=[]),
                 "messages", "invalid_value", id="messages-empty"),
    pytest.param("chat_completions.request", chat(user(5)),
                 "messages[0].content", "invalid_type", id="content-number"),
    pytest.param("chat_completions.request", chat(tools=[{"type": "custom", "custom": {
        "name": "x", "format": {"type": "text", "extra": 1}}}]),
                 "tools[0].custom.format.extra", "unknown_parameter", id="nested-closed-object"),
    pytest.param("completions.request", {"model": "m"},
                 "prompt", "missing_required_parameter", id="completion-without-prompt"),
    pytest.param("completions.request", {"model": "m", "prompt": "a", "best_of": 21},
                 "best_of", "invalid_value", id="best-of-21"),
    pytest.param("completions.request", {"model": "m", "prompt": 5},
                 "prompt", "invalid_type", id="prompt-number"),
    pytest.param("embeddings.request", {"model": "m", "input": []},
                 "input", "invalid_value", id="embeddings-input-empty"),
    pytest.param("embeddings.request", {"model": "m", "input": "a", "encoding_format": "int8"},
                 "encoding_format", "invalid_value", id="encoding-format-int8"),
    pytest.param("embeddings.request", {"model": "m", "input": "a", "dimensions": 0},
                 "dimensions", "invalid_value", id="dimensions-0"),
]


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid(name: str) -> None:
    schemas.validator_class().check_schema(schemas.load(name))


@pytest.mark.parametrize("name, doc", VALID)
def test_valid(name: str, doc: dict) -> None:
    schemas.validate(name, doc)


@pytest.mark.parametrize("name, doc, param, code", INVALID)
def test_invalid(name: str, doc: dict, param: str, code: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate(name, doc)
    assert (caught.value.param, caught.value.code) == (param, code), caught.value.message
    assert caught.value.status == 400 and len(caught.value.message) < 300


@pytest.mark.parametrize("doc, message", [
    pytest.param(chat({"role": "wizard", "content": "Hi"}),
                 "Invalid value: 'wizard'. Supported values are: 'developer', 'system', "
                 "'user', 'assistant', 'tool', and 'function'.", id="enum"),
    pytest.param(chat({"role": "system", "content": "x"}, {"role": "user"}),
                 "Missing required parameter: 'messages[1].content'.", id="required"),
    pytest.param(chat(temperature="0.7"), "Invalid type for 'temperature': expected a number, "
                 "but got a string instead.", id="type"),
    pytest.param(chat(temperature=5), "Invalid 'temperature': 5 is greater than the maximum "
                 "of 2.", id="maximum"),
    pytest.param(chat(stop=["a", "b", "c", "d", "e"]), "Invalid 'stop': array too long. Expected"
                 " an array with maximum length 4, but got an array with length 5 instead.",
                 id="max-items"),
    pytest.param(chat(user(5)), "Invalid type for 'messages[0].content': expected a string or "
                 "an array, but got an integer instead.", id="type-list"),
])
def test_messages(doc: dict, message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("chat_completions.request", doc)
    assert caught.value.message == message


BIG = "data:image/png;base64," + "A" * (1 << 20)


@pytest.mark.parametrize("doc, param", [
    pytest.param(chat(user([{"type": "image_url", "image_url": BIG}])),
                 "messages[0].content[0].image_url", id="image-url-string"),
    pytest.param(chat(user([{"type": "image_url", "image_url": {"url": [BIG]}}])),
                 "messages[0].content[0].image_url.url", id="url-list"),
    pytest.param(chat({"role": BIG, "content": "Hi"}), "messages[0].role", id="role"),
    pytest.param(chat(user([{"type": "text", "text": "a"}] * 3 + [{"type": BIG}])),
                 "messages[0].content[3].type", id="part-type"),
])
def test_message_is_bounded(doc: dict, param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("chat_completions.request", doc)
    assert caught.value.param == param
    assert len(caught.value.message) < 300
    assert len(json.dumps(caught.value.to_body())) < 400


def test_manifest_lists_the_files() -> None:
    on_disk = {path.name for path in SCHEMA_DIR.glob("*.json")} - {"manifest.json"}
    assert set(MANIFEST["files"]) == on_disk
    for name, entry in MANIFEST["files"].items():
        digest = hashlib.sha256((SCHEMA_DIR / name).read_bytes()).hexdigest()
        assert entry["sha256"] == digest, name + " changed after generation; re-run generate.py"
    source = MANIFEST["source"]
    assert len(source["sha256"]) == 64 and len(source["commit"]) == 40
    assert source["repository"] == "https://github.com/openai/openai-openapi"


@pytest.mark.parametrize("name, doc", [
    pytest.param("chat_completions.chunk", {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                     "finish_reason": None, "logprobs": None}], "usage": None}, id="chunk"),
    pytest.param("chat_completions.chunk", {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                                 "total_tokens": 4}}, id="usage-chunk"),
    pytest.param("completions.response", {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "text": "Hi", "finish_reason": "stop", "logprobs": None}]},
        id="completion"),
    pytest.param("embeddings.response", {
        "object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}]},
        id="embeddings"),
    pytest.param("models.list", {"object": "list", "data": [
        {"id": "llama3.2", "object": "model", "created": 1, "owned_by": "library"}]},
        id="models"),
    pytest.param("error", errors.InvalidRequest("x", param="model").to_body(), id="error"),
    pytest.param("error", errors.UpstreamTimeout("slow").to_body(), id="error-null-param"),
])
def test_response_examples(name: str, doc: dict) -> None:
    schemas.validate(name, doc)


def test_response_schemas_catch_missing_nullable_fields() -> None:
    # Required-but-nullable: an Ollama-style answer without logprobs does not conform.
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": "Hi", "refusal": None}}]}
    schemas.validate("chat_completions.response", answer)
    del answer["choices"][0]["logprobs"]
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("chat_completions.response", answer)
    assert caught.value.param == "choices[0].logprobs"


def test_check_json_schema() -> None:
    schemas.check_json_schema({"type": "object", "properties": {"a": {"type": "integer"}}},
                              "response_format.json_schema.schema")
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.check_json_schema({"type": "object", "properties": {"a": {"type": "strin"}}},
                                  "response_format.json_schema.schema")
    assert caught.value.param == "response_format.json_schema.schema"
    assert caught.value.message.startswith(
        "Invalid schema for 'response_format.json_schema.schema' at 'properties.a.type': ")


# -- the shortcut for simple requests never accepts what jsonschema refuses ----

PALETTE = [None, True, False, 0, 1, -1, 2, 3, 20, 21, 128, 129, 0.5, 1.0, 2.5, -2.5, "", "x",
           "auto", "low", "in_memory", "a" * 65, [], {}, ["x"]]
MESSAGES = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}],
    [{"role": "developer", "content": "x"}, {"role": "assistant", "content": "y"}],
    [{"role": "tool", "content": "x"}], [{"role": "function", "content": "x"}],
    [{"role": "wizard", "content": "x"}], [{"role": "user", "content": None}],
    [{"role": "user", "content": 5}], [{"role": "user"}], [{"content": "x"}],
    [{"role": "user", "content": []}], [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
    [{"role": "user", "content": "x", "name": 5}], [], "Hi", None, [["user", "x"]],
]


def _variants():
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
    properties = schemas.load("chat_completions.request")["properties"]
    for key in sorted(properties):
        for value in PALETTE:
            yield dict(chat, **{key: value})
    for messages in MESSAGES:
        yield dict(chat, messages=messages)
    yield {"messages": chat["messages"]}
    yield {"model": "m"}
    yield dict(chat, model=7)
    yield dict(chat, unknown_field={"any": "thing"})


def test_shortcut_only_accepts_what_the_full_validator_accepts():
    shortcut = schemas._shortcut("chat_completions.request")
    full = schemas._validator("chat_completions.request")
    accepted = 0
    for doc in _variants():
        if shortcut(doc):
            accepted += 1
            assert full.is_valid(doc), doc
    assert accepted > 100  # and it does take the common requests


@pytest.mark.parametrize("doc", [
    chat(),
    chat({"role": "system", "content": "Be brief."}, user("Hi"), temperature=0.7, max_tokens=512,
         stream=True, top_p=1, seed=3, user="u", some_extension=1),
])
def test_shortcut_takes_plain_requests(doc):
    assert schemas._shortcut("chat_completions.request")(doc)


def _responses_variants():
    plain = {"model": "llama3.2", "input": "Hi", "instructions": "Be brief."}
    for key in sorted(schemas.load("responses.request")["properties"]):
        for value in PALETTE:
            yield dict(plain, **{key: value})
    yield {"input": "Hi"}
    yield dict(plain, input=[{"role": "user", "content": "x"}])
    yield dict(plain, unknown_field={"any": "thing"})


def test_responses_shortcut_only_accepts_what_the_full_validator_accepts():
    shortcut = schemas._shortcut("responses.request")
    full = schemas._validator("responses.request")
    accepted = 0
    for doc in _responses_variants():
        if shortcut(doc):
            accepted += 1
            assert full.is_valid(doc), doc
    assert accepted > 50
    assert shortcut({"model": "m", "input": "Hi", "temperature": 0.7, "max_output_tokens": 64,
                     "stream": True, "store": False})
    assert not shortcut({"model": "m", "input": [{"role": "user", "content": "x"}]})


# -- the Responses API request -------------------------------------------------

def responses(input_items: object = "hi", **fields: object) -> dict:
    """Return a Responses request with ``input_items`` as its ``input``."""
    return dict({"model": "llama3.2", "input": input_items}, **fields)


def said(role: str, *parts: dict) -> dict:
    return {"type": "message", "role": role, "content": list(parts)}


TEXT = {"type": "input_text", "text": "What is in this image?"}
IMAGE = {"type": "input_image", "image_url": PNG, "detail": "auto"}
OUTPUT_TEXT = {"type": "output_text", "text": "A cat.", "annotations": [], "logprobs": []}
FUNCTION = {"type": "function", "name": "get_weather", "description": "Weather in a city",
            "strict": True, "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}
NAMESPACE = {"type": "namespace", "name": "docs", "description": "Docs server", "tools": [
    {"type": "function", "name": "search", "parameters": {"type": "object"}},
    {"type": "custom", "name": "raw"}]}
CUSTOM = {"type": "custom", "name": "apply_patch", "description": "Edit files",
          "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
ITEMS = [
    {"role": "user", "content": "Weather in Paris?"},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather",
     "arguments": "{\"city\": \"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "18 C, sunny"},
    {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin"},
    {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hm."}],
     "encrypted_content": "gAAAA"},
    {"type": "item_reference", "id": "msg_1"},
    {"id": "msg_2"},
    dict(said("assistant", OUTPUT_TEXT), id="msg_3", status="completed"),
    {"role": "assistant", "content": "It is sunny."},
]

RESPONSES_VALID = [
    pytest.param(responses(), id="minimal"),
    pytest.param(responses([said("user", TEXT, IMAGE)]), id="text-and-image-parts"),
    pytest.param(responses([{"role": "user", "content": [TEXT, IMAGE]}]),
                 id="message-without-type"),
    pytest.param(responses(ITEMS), id="item-types"),
    pytest.param(responses(tools=[FUNCTION, NAMESPACE, CUSTOM, {"type": "web_search"},
                                  {"type": "custom", "name": "free", "format": {"type": "text"}}]),
                 id="tools"),
    pytest.param(responses(tool_choice="auto"), id="tool-choice-auto"),
    pytest.param(responses(tool_choice="required"), id="tool-choice-required"),
    pytest.param(responses(tool_choice={"type": "function", "name": "get_weather"}),
                 id="tool-choice-function"),
    pytest.param(responses(tool_choice={"type": "custom", "name": "apply_patch"}),
                 id="tool-choice-custom"),
    pytest.param(responses(tool_choice={"type": "allowed_tools", "mode": "auto", "tools": [
        {"type": "function", "name": "get_weather"}]}), id="tool-choice-allowed-tools"),
    pytest.param(responses(tool_choice={"type": "web_search_preview"}), id="tool-choice-hosted"),
    pytest.param(responses(some_extension={"any": 1}, keep_alive="5m"), id="unknown-top-level"),
    pytest.param(responses(text={"format": {"type": "json_schema", "name": "answer", "strict": True,
                                            "schema": {"type": "object"}}, "verbosity": "low"}),
                 id="text-format-json-schema"),
    pytest.param(responses(text={"format": {"type": "json_object"}}), id="text-format-json-object"),
    pytest.param(responses(instructions=None, temperature=None, max_output_tokens=None,
                           previous_response_id=None, reasoning=None, stream=None),
                 id="nullable-fields"),
    pytest.param(responses(tools=[{"type": "file_search", "vector_store_ids": ["vs_1"], "filters": {
        "type": "and", "filters": [{"type": "eq", "key": "a", "value": 1}, {
            "type": "or", "filters": [{"type": "in", "key": "b", "value": ["x", "y"]}]}]}}]),
                 id="recursive-compound-filter"),
]

RESPONSES_INVALID = [
    pytest.param(responses([said("user", TEXT), said("user", IMAGE), {"role": "user", "content": [
        {"type": "input_image", "image_url": {"url": PNG}, "detail": "auto"}]}]),
                 "input[2].content[0].image_url", "invalid_type", id="image-url-object"),
    pytest.param(responses([said("user", TEXT), {"type": "bogus"}]),
                 "input[1].type", "invalid_value", id="unknown-item-type"),
    pytest.param(responses(temperature=3), "temperature", "invalid_value", id="temperature-3"),
    pytest.param(responses(max_output_tokens="x"), "max_output_tokens", "invalid_type",
                 id="max-output-tokens-string"),
    pytest.param(responses(tools=[{"type": "retrieval"}]), "tools[0].type", "invalid_value",
                 id="unknown-tool-type"),
    pytest.param(responses(tool_choice="any"), "tool_choice", "invalid_value",
                 id="tool-choice-any"),
    pytest.param(responses([{"type": "function_call", "name": "f", "arguments": "{}"}]),
                 "input[0].call_id", "missing_required_parameter", id="function-call-without-id"),
    pytest.param(responses([{"role": "wizard", "content": "x"}]), "input[0].role", "invalid_value",
                 id="role-wizard"),
    pytest.param(responses(tools=[dict(CUSTOM, format={"type": "grammar", "syntax": "ebnf",
                                                       "definition": "x"})]),
                 "tools[0].format.syntax", "invalid_value", id="grammar-syntax"),
    pytest.param(responses(text={"format": {"type": "json_schema", "schema": {}}}),
                 "text.format.name", "missing_required_parameter", id="json-schema-without-name"),
    pytest.param(responses(tools=[{"type": "file_search", "vector_store_ids": [], "filters": {
        "type": "and", "filters": [{"type": "or", "filters": [{"type": "near", "key": "k",
                                                                "value": 1}]}]}}]),
                 "tools[0].filters.filters[0].filters[0].type", "invalid_value",
                 id="recursive-filter-type"),
]


@pytest.mark.parametrize("doc", RESPONSES_VALID)
def test_responses_valid(doc: dict) -> None:
    schemas.validate("responses.request", doc)


@pytest.mark.parametrize("doc", [
    # Required by the spec, left out by real clients (Codex CLI, the SDKs), accepted by
    # OpenAI's API: schemas/generate.py's RELAXED_REQUIRED drops them from the request.
    pytest.param(responses([said("user", {"type": "input_image", "image_url": PNG})]),
                 id="image-without-detail"),
    pytest.param(responses(tools=[{"type": "function", "name": "f"}]),
                 id="function-without-strict-and-parameters"),
    pytest.param(responses([{"type": "reasoning", "summary": []}]), id="reasoning-without-id"),
    pytest.param(responses([{"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "x"}]}]), id="output-message-without-id-status"),
    pytest.param(responses([{"role": "assistant", "content": [
        {"type": "output_text", "text": "x"}]}]), id="ai-sdk-assistant-history-untyped"),
    pytest.param(responses(tools=[{"type": "namespace", "name": "crm", "tools": [
        {"type": "function", "name": "f"}]}]), id="namespace-without-description"),
])
def test_responses_relaxed(doc: dict) -> None:
    schemas.validate("responses.request", doc)
    # The response schemas keep the spec's requirements.
    assert "detail" in json.dumps(schemas.load("responses.response"))


@pytest.mark.parametrize("doc, param, code", RESPONSES_INVALID)
def test_responses_invalid(doc: dict, param: str, code: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("responses.request", doc)
    assert (caught.value.param, caught.value.code) == (param, code), caught.value.message
    assert caught.value.status == 400 and len(caught.value.message) < 300


def test_responses_unknown_item_type_lists_the_accepted_ones() -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("responses.request", responses([{"type": "bogus"}]))
    assert caught.value.message.startswith("Invalid value: 'bogus'. Supported values are: "
                                           "'message', 'function_call', ")
    assert "'function_call_output'" in caught.value.message
    assert re.search(r", and \d+ more\.$", caught.value.message)  # bounded; null not listed


def test_responses_request_is_open_at_the_top_only() -> None:
    schema = schemas.load("responses.request")
    assert "additionalProperties" not in schema
    assert "model" not in schema.get("required", ())  # a stored prompt may name it
    assert set(schema["$defs"]) == {"CompoundFilter"}  # the one recursive node


def test_responses_examples() -> None:
    item = dict(said("assistant", OUTPUT_TEXT), id="msg_1", status="completed")
    answer = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
              "model": "m", "output": [item], "error": None, "incomplete_details": None,
              "instructions": None, "tools": [], "tool_choice": "auto", "parallel_tool_calls": True,
              "metadata": {}, "temperature": None, "top_p": None}
    schemas.validate("responses.response", answer)
    schemas.validate("responses.input_items", {"object": "list", "data": [
        dict(said("user", TEXT), id="msg_0")], "first_id": "msg_0", "last_id": "msg_0",
        "has_more": False})
    for event in [
            {"type": "response.created", "sequence_number": 0, "response": answer},
            {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1",
             "output_index": 0, "content_index": 0, "delta": "A", "logprobs": []},
            {"type": "response.completed", "sequence_number": 2, "response": answer}]:
        schemas.validate("responses.stream_event", event)
    del answer["output"][0]["content"][0]["annotations"]
    with pytest.raises(errors.InvalidRequest) as caught:
        schemas.validate("responses.response", answer)
    assert caught.value.param == "output[0].content[0].annotations"


def test_recursive_ref_is_safe_across_threads() -> None:
    # jsonschema 3.2's RefResolver keeps a scope stack on the shared validator;
    # with only fragment refs and no $id every resolution is the same.
    import threading
    good = responses(tools=[{"type": "file_search", "vector_store_ids": [], "filters": {
        "type": "and", "filters": [{"type": "or", "filters": [{"type": "eq", "key": "k",
                                                              "value": 1}]}] * 20}}])
    bad = json.loads(json.dumps(good).replace('"eq"', '"near"'))
    checker = schemas._validator("responses.request")
    verdicts = []  # type: list

    def run() -> None:
        for _ in range(30):
            verdicts.append((checker.is_valid(good), checker.is_valid(bad)))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(verdicts) == {(True, False)}
