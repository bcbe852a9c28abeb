"""The Codex CLI (``codex exec``, pinned in tests/js/package.json) against the gateway
under real gunicorn, with the Ollama emulator behind it.

Codex speaks only the Responses API (``wire_api = "responses"``), always streams,
sends ``store: false`` and its whole history every turn, and executes its own
``exec_command`` tool locally. See tests/codex_cli.py for the offline config.
"""
import json
import time

import pytest

from ..codex_cli import Tripwire, codex_available, run_codex
from ..ollama_emulator import chat_line, ndjson_reply

pytestmark = pytest.mark.integration

MODEL = "llama3.2"


@pytest.fixture
def codex(tmp_path, gunicorn_url, ollama):
    """Return ``run(prompt, **kw)``: Codex in a fresh working dir; nothing may leave loopback."""
    missing = codex_available()
    assert missing is None, missing
    tripwire = Tripwire()
    workdir = tmp_path / "work"
    workdir.mkdir()

    def run(prompt, **kwargs):
        return run_codex(prompt, gunicorn_url, tmp_path / "home", workdir, tripwire=tripwire,
                         **kwargs)

    run.workdir = workdir
    yield run
    tripwire.stop()
    assert tripwire.attempts == [], "Codex tried to reach the network: %r" % tripwire.attempts


def text_reply(text, prompt_tokens=30):
    pieces = text.split(" ")
    lines = [chat_line(MODEL, piece + (" " if i < len(pieces) - 1 else ""))
             for i, piece in enumerate(pieces)]
    lines.append(chat_line(MODEL, done=True, done_reason="stop", prompt_eval_count=prompt_tokens,
                           eval_count=len(pieces)))
    return ndjson_reply(lines)


def tool_call_reply(name, arguments):
    call = {"id": "call_codex1", "function": {"index": 0, "name": name, "arguments": arguments}}
    return ndjson_reply([chat_line(MODEL, tool_calls=[call]),
                         chat_line(MODEL, done=True, done_reason="stop", prompt_eval_count=40,
                                   eval_count=12)])


def chats(ollama):
    return [r.json for r in ollama.requests if r.path == "/api/chat" and isinstance(r.json, dict)]


def tool_names(chat):
    return [t.get("function", {}).get("name") for t in chat.get("tools") or []]


def test_plain_answer(codex, ollama):
    ollama.script("/api/chat", text_reply("Echo: say cheese"))
    run = codex("say cheese")
    assert run.returncode == 0, run.describe()
    assert run.messages() == ["Echo: say cheese"], run.describe()
    assert not run.errors(), run.describe()
    completed = [e for e in run.events if e.get("type") == "turn.completed"]
    assert completed and completed[0]["usage"]["input_tokens"] == 30, run.describe()
    assert completed[0]["usage"]["output_tokens"] == 3, run.describe()
    [chat] = chats(ollama)
    assert chat["model"] == MODEL and chat.get("stream") is not False, chat
    # Codex's default tools reached Ollama as functions; its prompt is the last user message.
    assert "exec_command" in tool_names(chat), chat.get("tools")
    # Its default request also declares the hosted web_search (not offered to the model)
    # and a namespace tool (expanded into <namespace>__<function>).
    assert not any("web_search" in name for name in tool_names(chat)), tool_names(chat)
    assert any(name.startswith("multi_agent_v1__") for name in tool_names(chat)), tool_names(chat)
    last = chat["messages"][-1]
    assert (last["role"], last["content"]) == ("user", "say cheese"), chat["messages"][-3:]
    assert chat["messages"][0]["role"] == "system", chat["messages"][0]
    assert "Codex" in chat["messages"][0]["content"], chat["messages"][0]


def test_shell_tool_round_trip(codex, ollama):
    command = "echo codex-roundtrip > proof.txt && cat proof.txt"
    ollama.script("/api/chat", tool_call_reply("exec_command", {"cmd": command}),
                  text_reply("The proof is written."))
    run = codex("Write the proof file")
    assert run.returncode == 0, run.describe()
    proof = codex.workdir / "proof.txt"
    assert proof.is_file(), run.describe()
    assert proof.read_text() == "codex-roundtrip\n"
    executions = run.items("command_execution")
    assert len(executions) == 1 and executions[0]["exit_code"] == 0, run.describe()
    assert "codex-roundtrip" in executions[0]["aggregated_output"], run.describe()
    assert run.messages() == ["The proof is written."], run.describe()
    first, second = chats(ollama)
    # The second turn replays the call and carries the command's output as a tool message.
    assert second["messages"][:len(first["messages"])] == first["messages"], (first, second)
    call_msg, tool_msg = second["messages"][-2:]
    assert call_msg["role"] == "assistant", second["messages"][-2:]
    [call] = call_msg["tool_calls"]
    assert call["function"]["name"] == "exec_command", call
    assert call["function"]["arguments"] == {"cmd": command}, call
    assert tool_msg["role"] == "tool", tool_msg
    assert "codex-roundtrip" in tool_msg["content"], tool_msg
    assert "exit" in tool_msg["content"].lower(), tool_msg


def test_unknown_model_fails_fast(codex, ollama):
    started = time.monotonic()
    run = codex("hello", model="no-such-model")
    elapsed = time.monotonic() - started
    assert run.returncode != 0, run.describe()
    errors = run.errors()
    assert errors and any("no-such-model" in e for e in errors), run.describe()
    assert not run.messages(), run.describe()
    # A 404 is final: Codex did not retry it (it retries 5xx and dropped streams).
    asked = [r for r in ollama.requests if r.json and "no-such-model" in json.dumps(r.json)]
    assert 1 <= len(asked) <= 2, asked
    assert elapsed < 30, "took %.1fs\n%s" % (elapsed, run.describe())


def test_thinking_model(codex, ollama):
    model = "qwen3"
    ollama.script("/api/chat", ndjson_reply([
        chat_line(model, thinking="The user wants "), chat_line(model, thinking="a greeting."),
        chat_line(model, "Hi "), chat_line(model, "there."),
        chat_line(model, done=True, done_reason="stop", prompt_eval_count=25, eval_count=4)]))
    run = codex("greet me", model=model)
    assert run.returncode == 0, run.describe()
    assert run.messages() == ["Hi there."], run.describe()
    assert not run.errors(), run.describe()
    [chat] = chats(ollama)
    assert chat["model"] == model, chat
