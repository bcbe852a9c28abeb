"""The official openai JavaScript SDK against the gateway under real gunicorn.

``tests/js/sdk.test.mjs`` runs under ``node --test``; ``make test`` installs its
pinned ``openai`` package with ``npm ci``. A missing node, npm install or
failing JS test fails this test with node's own output.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

JS = Path(__file__).resolve().parent.parent / "js"


def test_official_js_sdk(gunicorn_url, ollama):
    node = shutil.which("node")
    assert node, "node is not on PATH: the JavaScript SDK tests need Node.js 20 or later"
    assert (JS / "node_modules" / "openai" / "package.json").is_file(), (
        "the openai npm package is not installed: run `npm ci` in tests/js (`make test` does)")
    env = dict(os.environ, OLLAMA_GATEWAY_BASE_URL=gunicorn_url, NO_COLOR="1")
    proc = subprocess.run([node, "--test", "--test-reporter=tap", "sdk.test.mjs"], cwd=str(JS),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    output = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, "node --test failed:\n" + output
    passed = re.search(r"^# pass (\d+)$", output, re.M)
    failed = re.search(r"^# fail (\d+)$", output, re.M)
    assert passed and failed, "no TAP summary from node --test:\n" + output
    assert int(passed.group(1)) >= 10 and int(failed.group(1)) == 0, output
    # The SDK reached Ollama through the gateway: chat, embeddings, models and generate.
    assert {r.path for r in ollama.requests} >= {"/api/chat", "/api/embed", "/api/tags",
                                                 "/api/show", "/api/generate"}
