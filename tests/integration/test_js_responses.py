"""/v1/responses from JavaScript clients against the gateway under real gunicorn.

``tests/js/responses.test.mjs`` (the official ``openai`` SDK) and
``tests/js/ai_sdk.test.mjs`` (the Vercel AI SDK, whose default ``openai(model)``
speaks the Responses API) run under ``node --test``; ``make test`` installs the
pinned packages with ``npm ci`` in ``tests/js``. A missing node, npm install or
failing JS test fails these tests with node's own output. Afterwards the
emulator's recorded ``/api/chat`` requests show what the gateway sent upstream.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

pytestmark = pytest.mark.integration

JS = Path(__file__).resolve().parent.parent / "js"
NODE_TIMEOUT = 180


def run_node_tests(script: str, base_url: str, packages: List[str], minimum: int) -> str:
    """Run ``node --test`` on ``script`` in tests/js; return its TAP output once all passed."""
    node = shutil.which("node")
    assert node, "node is not on PATH: the JavaScript client tests need Node.js 20 or later"
    for package in packages:
        assert (JS / "node_modules" / package / "package.json").is_file(), (
            "the %s npm package is not installed: run `npm ci` in tests/js (`make test` does)"
            % package)
    env = dict(os.environ, OLLAMA_GATEWAY_BASE_URL=base_url, NO_COLOR="1")
    proc = subprocess.run([node, "--test", "--test-reporter=tap", script], cwd=str(JS), env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=NODE_TIMEOUT)
    output = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, "node --test %s failed:\n%s" % (script, output)
    passed = re.search(r"^# pass (\d+)$", output, re.M)
    failed = re.search(r"^# fail (\d+)$", output, re.M)
    assert passed and failed, "no TAP summary from node --test:\n" + output
    assert int(passed.group(1)) >= minimum and int(failed.group(1)) == 0, output
    return output


def chats(ollama) -> List[Dict[str, Any]]:
    return [r.json for r in ollama.requests if r.path == "/api/chat" and isinstance(r.json, dict)]


def tool_messages(ollama, marker: str) -> List[Dict[str, Any]]:
    """Return the upstream ``tool`` messages whose content carries ``marker``."""
    return [m for chat in chats(ollama) for m in chat.get("messages") or []
            if m.get("role") == "tool" and marker in str(m.get("content"))]


def test_openai_js_sdk_responses(gunicorn_url, ollama):
    run_node_tests("responses.test.mjs", gunicorn_url, ["openai"], minimum=10)
    # The function_call_output went upstream as a tool message, after the assistant's call.
    found = [chat for chat in chats(ollama) if any(
        m.get("role") == "tool" and "js-responses-tool-output" in str(m.get("content"))
        for m in chat.get("messages") or [])]
    assert found, chats(ollama)
    messages = found[0]["messages"]
    roles = [m.get("role") for m in messages]
    assert roles[-2:] == ["assistant", "tool"], messages
    call = messages[-2]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "example"}, messages
    assert found[0]["tools"][0]["function"]["name"] == "get_weather", found[0]
    # instructions became a leading system message.
    assert any(chat["messages"][0] == {"role": "system", "content": "Answer briefly."}
               for chat in chats(ollama)), chats(ollama)
    # previous_response_id replayed the first turn upstream.
    second = [chat for chat in chats(ollama)
              if [m.get("content") for m in chat["messages"]][-3:]
              == ["first turn", "Echo: first turn", "second turn"]]
    assert second, chats(ollama)
    # The unknown model was asked for once, not retried.
    assert sum(1 for chat in chats(ollama) if chat.get("model") == "no-such-model") <= 1


def test_vercel_ai_sdk(gunicorn_url, ollama):
    run_node_tests("ai_sdk.test.mjs", gunicorn_url, ["ai", "@ai-sdk/openai", "zod"], minimum=6)
    # Both tool round trips (generateText and streamText) sent the tool result upstream.
    results = tool_messages(ollama, "ai-sdk-tool-output")
    assert len(results) == 2, chats(ollama)
    assert any(chat["messages"][0] == {"role": "system", "content": "Answer briefly."}
               for chat in chats(ollama)), chats(ollama)
    history = [chat for chat in chats(ollama)
               if [m.get("content") for m in chat["messages"]][-3:]
               == ["first question", "Echo: first question", "second question"]]
    assert history, chats(ollama)
