"""Table tests of the pure legacy-completions translation (OpenAI <-> native /api/generate)."""
import pytest

from ollama_gateway import translate
from ollama_gateway.errors import InvalidRequest

from ..schema_check import assert_matches


def req(**fields):
    return dict({"model": "m", "prompt": "Once"}, **fields)


def native(**fields):
    return dict({"model": "m", "prompt": "Once", "stream": False, "options": {}}, **fields)


# (openai request, native request)
REQUESTS = [
    pytest.param(req(), native(), id="minimal-no-sampling-defaults"),
    pytest.param(req(prompt=["Once"]), native(), id="prompt-list-of-one"),
    pytest.param(req(stream=True, stream_options={"include_usage": True}), native(stream=True),
                 id="stream"),
    pytest.param(req(temperature=0.2, top_p=0, frequency_penalty=0.5, presence_penalty=-1),
                 native(options={"temperature": 0.2, "top_p": 0, "frequency_penalty": 0.5,
                                 "presence_penalty": -1}), id="sampling-1to1-top_p-zero-kept"),
    pytest.param(req(seed=7), native(options={"seed": 7}), id="seed"),
    pytest.param(req(max_tokens=16), native(options={"num_predict": 16}), id="max_tokens"),
    pytest.param(req(stop="\n"), native(options={"stop": ["\n"]}), id="stop-string"),
    pytest.param(req(stop=["a", "b"]), native(options={"stop": ["a", "b"]}), id="stop-list"),
    pytest.param(req(suffix="return x"), native(suffix="return x"), id="suffix"),
    pytest.param(req(suffix=""), native(), id="empty-suffix-not-sent"),
    pytest.param(req(logprobs=3), native(logprobs=True, top_logprobs=3), id="logprobs-k"),
    pytest.param(req(logprobs=0), native(logprobs=True), id="logprobs-zero-sampled-only"),
    pytest.param(req(echo=True), native(), id="echo-is-ours-not-ollamas"),
    pytest.param(req(n=2, best_of=2), native(), id="best_of-equal-to-n"),
    pytest.param(req(best_of=1, logit_bias={}, user="u"), native(),
                 id="benign-values-accepted-not-forwarded"),
]


@pytest.mark.parametrize("openai_req, expected", REQUESTS)
def test_completion_request(openai_req, expected):
    assert translate.openai_completion_to_ollama(openai_req, "m") == expected


def test_settings_and_alias_target_apply():
    out = translate.openai_completion_to_ollama(req(model="gpt-4o"), "llama3.2:latest",
                                                num_ctx=8192, keep_alive="5m")
    assert out == native(model="llama3.2:latest", options={"num_ctx": 8192}, keep_alive="5m")


def test_request_is_not_mutated():
    openai_req = req(stop="x", stream_options={"include_usage": True}, stream=True)
    before = repr(openai_req)
    translate.openai_completion_to_ollama(openai_req, "m")
    assert repr(openai_req) == before


# (openai request, param, code)
REFUSED = [
    pytest.param(req(prompt=[]), "prompt", "invalid_value", id="prompt-empty-list"),
    pytest.param(req(prompt=["a", "b"]), "prompt", "unsupported_value", id="prompt-two-strings"),
    pytest.param(req(prompt=[1, 2, 3]), "prompt", "unsupported_value", id="prompt-token-ids"),
    pytest.param(req(prompt=[[1, 2]]), "prompt", "unsupported_value", id="prompt-token-id-lists"),
    pytest.param(req(best_of=3), "best_of", "unsupported_parameter", id="best_of-above-n"),
    pytest.param(req(n=3, best_of=2), "best_of", "unsupported_parameter", id="best_of-below-n"),
    pytest.param(req(logit_bias={"50256": -100}), "logit_bias", "unsupported_parameter",
                 id="logit_bias"),
    pytest.param(req(n=2, stream=True), "n", "unsupported_value", id="n-streaming"),
    pytest.param(req(stream_options={"include_usage": True}), "stream_options", "invalid_value",
                 id="stream_options-without-stream"),
    pytest.param(req(echo=True, logprobs=1), "echo", "unsupported_value", id="echo-with-logprobs"),
]


@pytest.mark.parametrize("openai_req, param, code", REFUSED)
def test_refused(openai_req, param, code):
    with pytest.raises(InvalidRequest) as info:
        translate.openai_completion_to_ollama(openai_req, "m")
    assert (info.value.param, info.value.code, info.value.status) == (param, code, 400)


def generated(response="Hi there", done_reason="stop", **extra):
    return dict({"model": "m", "created_at": "2026-08-21T10:00:01Z", "response": response,
                 "done": True, "done_reason": done_reason, "prompt_eval_count": 4,
                 "eval_count": 2, "context": [1, 2]}, **extra)


def lp(token, logprob, *tops):
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": v} for t, v in tops]}


# (native reply, kwargs, expected choice)
RESPONSES = [
    pytest.param(generated(), {}, {"text": "Hi there", "index": 0, "logprobs": None,
                                   "finish_reason": "stop"}, id="plain"),
    pytest.param(generated(done_reason="length"), {},
                 {"text": "Hi there", "index": 0, "logprobs": None, "finish_reason": "length"},
                 id="length"),
    pytest.param(generated(response="", done_reason="load"), {},
                 {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"},
                 id="empty-prompt-load-is-stop"),
    pytest.param(generated(done_reason=None), {},
                 {"text": "Hi there", "index": 0, "logprobs": None, "finish_reason": "stop"},
                 id="missing-done_reason-is-stop"),
    pytest.param(generated(response=" world"), {"echo": "Hello"},
                 {"text": "Hello world", "index": 0, "logprobs": None, "finish_reason": "stop"},
                 id="echo-prepends-prompt"),
    pytest.param(generated(logprobs=[lp("Hi", -0.1, ("Hi", -0.1), ("Hey", -2.5)),
                                     lp(" there", -0.3, ("there", -1.0), (" there", -0.3))]),
                 {"logprobs": 1},
                 {"text": "Hi there", "index": 0, "finish_reason": "stop", "logprobs": {
                     "tokens": ["Hi", " there"], "token_logprobs": [-0.1, -0.3],
                     "top_logprobs": [{"Hi": -0.1}, {"there": -1.0, " there": -0.3}],
                     "text_offset": [0, 2]}},
                 id="logprobs-legacy-shape-sampled-token-always-in-top"),
    pytest.param(generated(logprobs=[lp("Hi", -0.1), lp(" there", -0.3)]), {"logprobs": 0},
                 {"text": "Hi there", "index": 0, "finish_reason": "stop", "logprobs": {
                     "tokens": ["Hi", " there"], "token_logprobs": [-0.1, -0.3],
                     "top_logprobs": [{"Hi": -0.1}, {" there": -0.3}], "text_offset": [0, 2]}},
                 id="logprobs-zero"),
]


@pytest.mark.parametrize("native_reply, kwargs, choice", RESPONSES)
def test_completion_response(native_reply, kwargs, choice):
    out = translate.ollama_completion_to_openai(native_reply, "cmpl-1", 1700000000, "gpt-x",
                                                **kwargs)
    assert_matches("completions.response", out)
    assert out["created"] == translate.ollama_time_to_unix(native_reply["created_at"])
    assert out == {"id": "cmpl-1", "object": "text_completion", "created": out["created"],
                   "model": "gpt-x", "system_fingerprint": "fp_ollama", "choices": [choice],
                   "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}


def test_merge_n_choices():
    parts = [translate.ollama_completion_to_openai(generated(response=t), "cmpl-1", 1, "m")
             for t in ("a", "b")]
    merged = translate.merge_choices(parts)
    assert [(c["index"], c["text"]) for c in merged["choices"]] == [(0, "a"), (1, "b")]
    assert merged["usage"] == {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12}


def line(response="", done=False, **extra):
    return dict({"model": "m", "created_at": "2026-08-21T10:00:00Z", "response": response,
                 "done": done}, **extra)


def run(stream, lines):
    out = []
    for native_line in lines:
        out.extend(stream.feed(native_line))
    return out


def test_stream_chunks_and_usage():
    stream = translate.CompletionStream("cmpl-1", 5, "gpt-x", include_usage=True)
    chunks = run(stream, [line("Hel"), line(thinking="hmm"), line("lo"),
                          line(done=True, done_reason="length", prompt_eval_count=3,
                               eval_count=2)])
    assert stream.done
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["Hel", "lo", ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, "length"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("cmpl-1", "text_completion", 1787306400, "gpt-x")}  # the first line's created_at


def test_stream_without_usage_has_no_usage_key():
    chunks = run(translate.CompletionStream("cmpl-1", 5, "m"),
                 [line("a"), line(done=True, done_reason="stop")])
    assert len(chunks) == 2 and not any("usage" in c for c in chunks)


def test_stream_echo_and_logprob_offsets():
    stream = translate.CompletionStream("cmpl-1", 5, "m", echo="Say: ", logprobs=0)
    chunks = run(stream, [line("Hi", logprobs=[lp("Hi", -0.1)]),
                          line(" you", logprobs=[lp(" you", -0.2)]),
                          line(done=True, done_reason="stop")])
    assert [c["choices"][0]["text"] for c in chunks] == ["Say: ", "Hi", " you", ""]
    assert chunks[0]["choices"][0]["logprobs"] is None
    assert chunks[1]["choices"][0]["logprobs"]["text_offset"] == [5]
    assert chunks[2]["choices"][0]["logprobs"] == {
        "tokens": [" you"], "token_logprobs": [-0.2], "top_logprobs": [{" you": -0.2}],
        "text_offset": [7]}
