"""Tables for the Responses API: request items and tools -> native /api/chat, and the
output items and event sequence built from native replies (streamed and not)."""
import base64
import itertools
import json

import pytest

from ollama_gateway import schemas
from ollama_gateway.errors import APIError, InvalidRequest, UpstreamError
from ollama_gateway.translate import (ResponsesStream, input_items_page,
                                      openai_responses_to_ollama, response_skeleton)
from ollama_gateway.translate.responses_input import decrypt_reasoning, encrypt_reasoning

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
PNG_B64 = PNG.split(",", 1)[1]
FN = {"type": "function", "name": "get_weather", "description": "Weather now",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}, "strict": False}
NATIVE_FN = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather now", "parameters": FN["parameters"]}}


def ids():
    counter = itertools.count()
    return lambda prefix: "%s_%d" % (prefix, next(counter))


def translate(req, history=(), references=None):
    return openai_responses_to_ollama(dict({"model": "m"}, **req), "llama3.2:latest", ids(),
                                      history, references)


@pytest.mark.parametrize("req, messages", [
    pytest.param({"input": "hi"}, [{"role": "user", "content": "hi"}], id="string-input"),
    pytest.param({"input": "hi", "instructions": "Be brief."},
                 [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                 id="instructions-lead"),
    pytest.param({"input": [{"role": "developer", "content": "rules"},
                            {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                                         {"type": "input_text", "text": "b"}]}]},
                 [{"role": "system", "content": "rules"}, {"role": "user", "content": "a\n\nb"}],
                 id="developer-to-system-and-parts"),
    pytest.param({"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": PNG, "detail": "auto"}]}]},
        [{"role": "user", "content": "what is this", "images": [PNG_B64]}], id="image"),
    pytest.param({"input": [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather",
         "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]},
        [{"role": "user", "content": "weather?"},
         {"role": "assistant", "content": "", "tool_calls": [
             {"id": "c1", "function": {"index": 0, "name": "get_weather",
                                       "arguments": {"city": "Oslo"}}}]},
         {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "c1"}],
        id="function-call-round-trip"),
    pytest.param({"input": [
        {"role": "user", "content": "two calls"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "b", "arguments": ""},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_text", "text": "chart"}, {"type": "input_image", "image_url": PNG}]},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}]},
        [{"role": "user", "content": "two calls"},
         {"role": "assistant", "content": "Let me check.", "tool_calls": [
             {"id": "c1", "function": {"index": 0, "name": "a", "arguments": {}}},
             {"id": "c2", "function": {"index": 1, "name": "b", "arguments": {}}}]},
         {"role": "tool", "content": "chart", "tool_name": "b", "tool_call_id": "c2",
          "images": [PNG_B64]},
         {"role": "tool", "content": "ok", "tool_name": "a", "tool_call_id": "c1"}],
        id="text-then-calls-one-assistant-turn"),
    pytest.param({"input": [
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "c9", "output": "Done"}]},
        [{"role": "user", "content": "patch it"},
         {"role": "assistant", "content": "", "tool_calls": [
             {"id": "c9", "function": {"index": 0, "name": "apply_patch",
                                       "arguments": {"input": "*** Begin"}}}]},
         {"role": "tool", "content": "Done", "tool_name": "apply_patch", "tool_call_id": "c9"}],
        id="custom-tool-call"),
    pytest.param({"input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [],
         "content": [{"type": "reasoning_text", "text": "hmm"}]},
        {"type": "message", "role": "assistant", "content": "answer"}]},
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": "answer", "thinking": "hmm"}], id="reasoning-text"),
    pytest.param({"input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
         "encrypted_content": encrypt_reasoning("secret chain")},
        {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"}]},
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": "", "thinking": "secret chain", "tool_calls": [
             {"id": "c1", "function": {"index": 0, "name": "a", "arguments": {}}}]}],
        id="reasoning-encrypted-round-trip"),
    pytest.param({"input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "sum"}],
         "encrypted_content": "gAAAAB-someone-elses"},
        {"role": "assistant", "content": "a"}]},
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": "a", "thinking": "sum"}],
        id="foreign-encrypted-falls-back-to-summary"),
])
def test_input_items(req, messages):
    assert translate(req).native["messages"] == messages


def test_history_precedes_input_and_instructions_lead():
    history = [{"type": "message", "role": "user", "content": [
                   {"type": "input_text", "text": "first"}]},
               {"type": "message", "role": "assistant", "content": [
                   {"type": "output_text", "text": "one", "annotations": []}]}]
    native = translate({"input": "second", "instructions": "sys"}, history).native
    assert native["messages"] == [{"role": "system", "content": "sys"},
                                  {"role": "user", "content": "first"},
                                  {"role": "assistant", "content": "one"},
                                  {"role": "user", "content": "second"}]


def test_item_reference_is_resolved_from_the_references():
    stored = {"type": "message", "id": "msg_old", "role": "user",
              "content": [{"type": "input_text", "text": "from the store"}]}
    plan = translate({"input": [{"type": "item_reference", "id": "msg_old"}]},
                     references={"msg_old": stored})
    assert plan.native["messages"] == [{"role": "user", "content": "from the store"}]
    assert plan.input_items == [dict(stored, status="completed")]


@pytest.mark.parametrize("req, param, code", [
    pytest.param({"input": [{"type": "item_reference", "id": "msg_gone"}]}, "input[0].id",
                 "invalid_value", id="unknown-reference"),
    pytest.param({"input": [{"role": "user", "content": [
        {"type": "input_file", "file_data": "x", "filename": "a.pdf"}]}]},
        "input[0].content[0].type", "unsupported_value", id="input-file"),
    pytest.param({"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
        "input[0].content[0].image_url", "unsupported_value", id="http-image"),
    pytest.param({"input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file_1"}]}]},
        "input[0].content[0].file_id", "unsupported_value", id="image-file-id"),
    pytest.param({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
                 "input[0].call_id", "invalid_value", id="output-without-call"),
    pytest.param({"input": [{"type": "function_call", "call_id": "c", "name": "a",
                             "arguments": "{not json"}]},
                 "input[0].arguments", "invalid_value", id="bad-arguments"),
    pytest.param({"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed",
                             "action": {"type": "search", "query": "q"}}]},
                 "input[0].type", "unsupported_value", id="unsupported-item"),
    pytest.param({"input": "x", "background": True}, "background", "unsupported_parameter",
                 id="background"),
    pytest.param({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_parameter",
                 id="stored-prompt"),
    pytest.param({"input": "x", "conversation": "conv_1"}, "conversation",
                 "unsupported_parameter", id="conversation"),
    pytest.param({"instructions": "only"}, "input", "missing_required_parameter",
                 id="no-input"),
    pytest.param({"input": "x", "tools": [{"type": "local_shell"}]}, "tools[0].type",
                 "unsupported_value", id="local-shell"),
    pytest.param({"input": "x", "tools": [FN], "tool_choice": {"type": "function", "name": "nope"}},
                 "tool_choice.name", "invalid_value", id="choice-not-in-tools"),
    pytest.param({"input": "x", "tools": [FN, {"type": "web_search"}],
                  "tool_choice": {"type": "web_search"}}, "tool_choice", "unsupported_value",
                 id="choice-forces-hosted"),
    pytest.param({"input": "x", "tools": [FN], "tool_choice": "required",
                  "text": {"format": {"type": "json_object"}}}, "text.format",
                 "unsupported_value", id="forced-and-json-format"),
    pytest.param({"input": "x", "tools": [FN, dict(FN)]}, "tools[1].name", "invalid_value",
                 id="duplicate-tool"),
])
def test_refused(req, param, code):
    with pytest.raises(InvalidRequest) as info:
        translate(req)
    assert (info.value.param, info.value.code) == (param, code)


def test_options_absent_stay_absent_and_map_when_given():
    assert translate({"input": "x"}).native["options"] == {}
    native = translate({"input": "x", "temperature": 0.2, "top_p": 0.9,
                        "max_output_tokens": 64, "reasoning": {"effort": "minimal"},
                        "include": ["message.output_text.logprobs"], "top_logprobs": 3}).native
    assert native["options"] == {"temperature": 0.2, "top_p": 0.9, "num_predict": 64}
    assert (native["think"], native["logprobs"], native["top_logprobs"]) == ("low", True, 3)


@pytest.mark.parametrize("fmt, native", [
    pytest.param({"type": "text"}, None, id="text"),
    pytest.param({"type": "json_object"}, "json", id="json-object"),
    pytest.param({"type": "json_schema", "name": "x", "schema": {"type": "object"}},
                 {"type": "object"}, id="json-schema"),
])
def test_text_format(fmt, native):
    plan = translate({"input": "x", "text": {"format": fmt}})
    assert plan.native.get("format") == native
    assert ("text.format.schema" in plan.schemas) == isinstance(native, dict)


def test_tools_function_namespace_custom_and_hosted():
    plan = translate({"input": "x", "tools": [
        FN,
        {"type": "web_search"},
        {"type": "namespace", "name": "crm", "description": "CRM tools", "tools": [
            {"type": "function", "name": "find", "parameters": {"type": "object"}},
            {"type": "custom", "name": "note"}]},
        {"type": "custom", "name": "apply_patch", "description": "Patch files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "file_search", "vector_store_ids": ["vs_1"]}]})
    names = [t["function"]["name"] for t in plan.native["tools"]]
    assert names == ["get_weather", "crm__find", "crm__note", "apply_patch"]
    assert plan.native["tools"][0] == NATIVE_FN
    patch = plan.native["tools"][3]["function"]
    assert patch["parameters"]["required"] == ["input"]
    assert "lark grammar" in patch["description"] and "start: /.+/" in patch["description"]
    assert plan.tools["crm__find"] == ("function", "find", "crm")
    assert plan.tools["apply_patch"] == ("custom", "apply_patch", None)
    assert plan.ignored == ["tools[1] (web_search)", "tools[4] (file_search)"]
    assert set(plan.schemas) == {"tools[0].parameters", "tools[2].tools[0].parameters"}


def test_namespaced_call_in_history_maps_to_the_native_name():
    tools = [{"type": "namespace", "name": "crm", "description": "", "tools": [
        {"type": "function", "name": "find", "parameters": {"type": "object"}}]}]
    native = translate({"tools": tools, "input": [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "c", "namespace": "crm", "name": "find",
         "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "r"}]}).native
    assert native["messages"][1]["tool_calls"][0]["function"]["name"] == "crm__find"
    assert native["messages"][2]["tool_name"] == "crm__find"


@pytest.mark.parametrize("choice, offered, forced", [
    pytest.param("auto", ["get_weather", "b"], None, id="auto"),
    pytest.param("none", None, None, id="none"),
    pytest.param("required", None, ("get_weather", "b"), id="required"),
    pytest.param({"type": "function", "name": "b"}, None, ("b",), id="named"),
    pytest.param({"type": "allowed_tools", "mode": "auto", "tools": [
        {"type": "function", "name": "b"}]}, ["b"], None, id="allowed-auto"),
    pytest.param({"type": "allowed_tools", "mode": "required", "tools": [
        {"type": "function", "name": "b"}]}, None, ("b",), id="allowed-required"),
])
def test_tool_choice(choice, offered, forced):
    tools = [FN, dict(FN, name="b")]
    plan = translate({"input": "x", "tools": tools, "tool_choice": choice})
    assert [t["function"]["name"] for t in plan.native.get("tools", ())] == (offered or [])
    assert (plan.forced.names if plan.forced else None) == forced
    if forced:
        assert plan.native["format"] == plan.forced.format
        assert {"role": "system", "content": plan.forced.instruction} in plan.native["messages"]


def test_ignored_fields_are_listed():
    plan = translate({"input": "x", "user": "u", "prompt_cache_key": "k", "truncation": "auto",
                      "service_tier": "flex", "top_logprobs": 2,
                      "reasoning": {"summary": "auto"}, "text": {"verbosity": "low"}})
    assert plan.ignored == ["prompt_cache_key", "reasoning.summary", "service_tier",
                            "text.verbosity", "top_logprobs", "truncation", "user"]
    assert "user" not in plan.native


def test_encrypted_reasoning_round_trips_and_refuses_garbage():
    assert decrypt_reasoning(encrypt_reasoning("é\n" * 100)) == "é\n" * 100
    assert decrypt_reasoning("ogw1.!!!") is None
    assert decrypt_reasoning("gAAAA") is None


# -- the reply side ------------------------------------------------------------------

def line(content="", thinking=None, tool_calls=None, done=False, done_reason=None, **extra):
    message = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    out = {"model": "m", "created_at": "2026-12-01T10:00:00.5Z", "message": message,
           "done": done}
    if done:
        out.update(done_reason=done_reason or "stop", prompt_eval_count=7, eval_count=5)
    out.update(extra)
    return out


def fold(lines):
    """Return the lines as Ollama folds them into one non-streamed reply."""
    final = dict(lines[-1])
    message = {"role": "assistant", "content": "".join(l["message"]["content"] for l in lines)}
    thinking = "".join(l["message"].get("thinking", "") for l in lines)
    calls = [c for l in lines for c in l["message"].get("tool_calls", [])]
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    final["message"] = message
    return final


def stream_for(req=None, tools=None, forced=None, **kwargs):
    req = dict({"model": "m", "input": "x"}, **(req or {}))
    skeleton = response_skeleton(req, "resp_1", 0, "m", True)
    return ResponsesStream(skeleton, tools or {}, ids(), forced=forced, **kwargs)


def run(lines, **kwargs):
    stream = stream_for(**kwargs)
    events = [e for l in lines for e in stream.feed(l)]
    return stream, events


CALL = {"id": "call_x", "function": {"index": 0, "name": "get_weather",
                                     "arguments": {"city": "Oslo"}}}
CASES = {
    "text": [line("Hel"), line("lo"), line(done=True)],
    "thinking-then-text": [line(thinking="hm"), line(thinking="m"), line("Hi"), line(done=True)],
    "text-then-call": [line("Let me look."), line(tool_calls=[CALL]), line(done=True)],
    "two-calls": [line(tool_calls=[CALL, dict(CALL, id="call_y")]), line(done=True)],
    "length": [line("cut"), line(done=True, done_reason="length")],
}


def _without_ids(value):
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items()
                if k not in ("id", "item_id", "sequence_number", "call_id")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_and_folded_replies_build_the_same_response(case):
    streamed, events = run(CASES[case])
    folded, _ = run([fold(CASES[case])])
    quiet, none = run([fold(CASES[case])], events=False)  # the non-streamed path
    assert _without_ids(streamed.response) == _without_ids(folded.response)
    assert quiet.response == dict(folded.response, id=quiet.response["id"]) and none == []
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        schemas._validator("responses.stream_event").validate(event)
    schemas._validator("responses.response").validate(streamed.response)
    # Every item that was added is done, at its own index, in order.
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert added == done == list(range(len(streamed.response["output"])))


def test_event_sequence_for_thinking_text_and_a_call():
    stream, events = run(CASES["thinking-then-text"][:-1] + [line(tool_calls=[CALL]),
                                                             line(done=True)])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.reasoning_text.delta", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    output = stream.response["output"]
    assert [item["type"] for item in output] == ["reasoning", "message", "function_call"]
    assert output[0]["content"] == [{"type": "reasoning_text", "text": "hmm"}]
    assert output[1]["content"][0]["text"] == "Hi"
    assert output[2]["arguments"] == '{"city":"Oslo"}'
    assert output[2]["call_id"] == "call_x"
    assert stream.response["created_at"] == 1796119200
    assert stream.response["usage"] == {
        "input_tokens": 7, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12}


def test_text_after_a_call_gets_its_own_item():
    # Ollama's own layer leaves the first message open and reuses its index.
    stream, events = run([line("Let me look."), line(tool_calls=[CALL]), line("After"),
                          line(done=True)])
    assert [i["type"] for i in stream.response["output"]] == ["message", "function_call",
                                                               "message"]
    assert [i["content"][0]["text"] for i in stream.response["output"][::2]] == [
        "Let me look.", "After"]
    kinds = [(e["type"], e.get("output_index")) for e in events]
    assert kinds.index(("response.output_item.done", 0)) < kinds.index(
        ("response.output_item.added", 1))


def test_length_is_incomplete():
    stream, events = run(CASES["length"])
    assert events[-1]["type"] == "response.incomplete"
    assert stream.response["status"] == "incomplete"
    assert stream.response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert stream.response["output"][0]["status"] == "incomplete"


def test_parallel_off_and_max_tool_calls_keep_the_first_calls():
    calls = [dict(CALL, id="call_%d" % k) for k in range(3)]
    one, _ = run([line(tool_calls=calls), line(done=True)], parallel_tool_calls=False)
    two, _ = run([line(tool_calls=calls), line(done=True)], max_tool_calls=2)
    assert [i["call_id"] for i in one.response["output"]] == ["call_0"]
    assert [i["call_id"] for i in two.response["output"]] == ["call_0", "call_1"]


def test_custom_and_namespaced_calls_map_back():
    plan = translate({"input": "x", "tools": [
        {"type": "custom", "name": "apply_patch"},
        {"type": "namespace", "name": "crm", "description": "", "tools": [
            {"type": "function", "name": "find", "parameters": {"type": "object"}}]}]})
    calls = [{"function": {"name": "apply_patch", "arguments": {"input": "*** Begin Patch"}}},
             {"function": {"name": "crm__find", "arguments": {"q": 1}}}]
    stream, events = run([line(tool_calls=calls), line(done=True)], tools=plan.tools)
    custom, namespaced = stream.response["output"]
    assert (custom["type"], custom["name"], custom["input"]) == (
        "custom_tool_call", "apply_patch", "*** Begin Patch")
    assert (namespaced["name"], namespaced["namespace"]) == ("find", "crm")
    assert "response.custom_tool_call_input.done" in [e["type"] for e in events]
    for event in events:
        schemas._validator("responses.stream_event").validate(event)


def test_encrypted_reasoning_is_attached_when_asked():
    stream, _ = run([line(thinking="why"), line("a"), line(done=True)], encrypted_reasoning=True)
    assert decrypt_reasoning(stream.response["output"][0]["encrypted_content"]) == "why"


def test_logprobs_reach_the_text_part():
    lp = [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}]}]
    stream, events = run([line("Hi", logprobs=lp), line(done=True)])
    part = stream.response["output"][0]["content"][0]
    assert part["logprobs"][0]["token"] == "Hi" and part["logprobs"][0]["bytes"] == [72, 105]
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"] == part["logprobs"]


def test_fast_path_is_feed_or_declines():
    lines = [line("A"), line('b "quoted"'), line("c\\nd"), line("ünï"), line(""), line(done=True)]
    raw = [json.dumps(l, ensure_ascii=False, separators=(",", ":")).encode() for l in lines]
    slow, slow_events = run(lines)
    fast = stream_for()
    out = []
    for data, native in zip(raw, lines):
        chunk = fast.fast_chunk(data)
        if chunk is None:
            out += [fast.encode(e) for e in fast.feed(native)]
        elif chunk:
            out.append(chunk)
    assert b"".join(out) == b"".join(slow.encode(e) for e in slow_events)
    assert fast.response == slow.response


def test_failure_mid_stream_ends_with_response_failed():
    stream = stream_for()
    stream.feed(line("partial"))
    events = stream.fail(UpstreamError("Ollama reported an error: boom"))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "server_error",
                                               "message": "Ollama reported an error: boom"}
    early = stream_for().fail(APIError("x"))
    assert [e["type"] for e in early] == ["response.created", "response.in_progress",
                                          "response.failed"]


def test_forced_single_function_streams_argument_deltas():
    plan = translate({"input": "x", "tools": [FN], "tool_choice": "required"})
    stream, events = run([line('{"city":'), line('"Oslo"}'), line(done=True)],
                         tools=plan.tools, forced=plan.forced)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ['{"city":', '"Oslo"}']
    (call,) = stream.response["output"]
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call", "get_weather", {"city": "Oslo"})


def test_forced_among_several_is_one_call_at_the_end():
    plan = translate({"input": "x", "tools": [FN, dict(FN, name="b")], "tool_choice": "required"})
    reply = json.dumps({"name": "b", "arguments": {"city": "Rome"}})
    stream, _ = run([line(reply[:10]), line(reply[10:]), line(done=True)],
                    tools=plan.tools, forced=plan.forced)
    (call,) = stream.response["output"]
    assert (call["name"], json.loads(call["arguments"])) == ("b", {"city": "Rome"})


def test_forced_reply_that_is_not_json_fails():
    plan = translate({"input": "x", "tools": [FN, dict(FN, name="b")], "tool_choice": "required"})
    with pytest.raises(UpstreamError):
        run([line("not json"), line(done=True)], tools=plan.tools, forced=plan.forced)


@pytest.mark.parametrize("order, after, limit, expect, more", [
    pytest.param("desc", None, 2, ["c", "b"], True, id="desc-first-page"),
    pytest.param("desc", "b", 2, ["a"], False, id="desc-after"),
    pytest.param("asc", None, 5, ["a", "b", "c"], False, id="asc-all"),
])
def test_input_items_page(order, after, limit, expect, more):
    page = input_items_page([{"id": k} for k in "abc"], limit, order, after)
    assert [i["id"] for i in page["data"]] == expect
    assert page["has_more"] is more and page["first_id"] == expect[0]
    with pytest.raises(InvalidRequest):
        input_items_page([{"id": "a"}], after="zz")
