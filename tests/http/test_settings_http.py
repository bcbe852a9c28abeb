"""Settings that change what goes upstream: num_ctx (global, per model), keep_alive."""
import pytest
import requests

from ollama_gateway import create_app

from ..servers import InProcessServer


@pytest.fixture
def url(emulator):
    server = InProcessServer(create_app(ollama_url=emulator.url, num_ctx=4096, keep_alive="30m",
                                        num_ctx_by_model={"qwen3": 32768}))
    yield server.url + "/v1"
    server.stop()


@pytest.mark.parametrize("model, num_ctx", [("llama3.2", 4096), ("qwen3", 32768)])
@pytest.mark.parametrize("stream", [False, True])
def test_num_ctx_and_keep_alive_sent(url, ollama, model, num_ctx, stream):
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream}
    resp = requests.post(url + "/chat/completions", json=body, timeout=10)
    assert resp.status_code == 200
    sent = ollama.last("/api/chat").json
    assert sent["options"]["num_ctx"] == num_ctx
    assert sent["keep_alive"] == "30m"
