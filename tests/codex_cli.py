"""Run the Codex CLI (``@openai/codex`` from tests/js/node_modules) against a loopback gateway.

Codex gets a throwaway HOME and CODEX_HOME, an environment built from scratch
(nothing of the developer's: no OPENAI_API_KEY, no OLLAMA_*), and a config that
turns off everything that would leave the machine: the update check, analytics,
feedback, plugins (its marketplace sync runs ``git ls-remote https://github.com/...``),
connector apps, tool suggestions, the hosted web search tool and history. Codex's
default local tool set (``exec_command``, ``write_stdin``, ``view_image``, ...) stays.

As a tripwire, HTTP_PROXY/HTTPS_PROXY point at :class:`Tripwire`, a loopback
proxy that refuses everything and records what tried to get out; NO_PROXY
exempts 127.0.0.1, where the gateway is.
"""
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

JS = Path(__file__).resolve().parent / "js"
CODEX_JS = JS / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
KEY_ENV = "OLLAMA_GATEWAY_TEST_KEY"
TIMEOUT = 120.0

CONFIG = """\
model = {model}
model_provider = "gateway"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[features]
plugins = false
remote_plugin = false
apps = false
tool_suggest = false

[model_providers.gateway]
name = "ollama-gateway"
base_url = {base_url}
wire_api = "responses"
env_key = "{key_env}"
request_max_retries = {request_max_retries}
stream_max_retries = {stream_max_retries}
"""


class Tripwire:
    """A loopback HTTP proxy that answers 403 to everything and records each attempt."""

    def __init__(self) -> None:
        self.attempts = []  # type: List[str]
        tripwire = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def refuse(self) -> None:
                tripwire.attempts.append("%s %s" % (self.command, self.path))
                self.send_error(403, "no network in tests")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_CONNECT = do_OPTIONS = refuse

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CodexRun:
    """The outcome of one ``codex exec --json``: exit code, JSONL events, raw output."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.events = []  # type: List[Dict[str, Any]]
        for line in stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass

    def items(self, kind: str) -> List[Dict[str, Any]]:
        """Return the completed items of type ``kind`` (agent_message, command_execution, error)."""
        return [e["item"] for e in self.events
                if e.get("type") == "item.completed" and e.get("item", {}).get("type") == kind]

    def messages(self) -> List[str]:
        return [item.get("text", "") for item in self.items("agent_message")]

    def errors(self) -> List[str]:
        """Return the turn's error messages (``error`` events and ``turn.failed``)."""
        out = [e.get("message", "") for e in self.events if e.get("type") == "error"]
        out += [e.get("error", {}).get("message", "") for e in self.events
                if e.get("type") == "turn.failed"]
        return out

    def describe(self) -> str:
        return "codex exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.returncode, self.stdout, self.stderr[-8000:])


def codex_available() -> Optional[str]:
    """Return why Codex cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not on PATH: the Codex CLI tests need Node.js 20 or later"
    if not CODEX_JS.is_file():
        return ("the @openai/codex npm package is not installed: run `npm ci` in tests/js "
                "(`make test` does)")
    return None


def run_codex(prompt: str, base_url: str, home: Path, workdir: Path, model: str = "llama3.2",
              tripwire: Optional[Tripwire] = None, timeout: float = TIMEOUT,
              request_max_retries: int = 4, stream_max_retries: int = 5) -> CodexRun:
    """Run ``codex exec --json`` on ``prompt`` in ``workdir`` against ``base_url`` (…/v1)."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(CONFIG.format(
        model=json.dumps(model), base_url=json.dumps(base_url), key_env=KEY_ENV,
        request_max_retries=request_max_retries, stream_max_retries=stream_max_retries))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local/share"),
           "TMPDIR": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1", "TERM": "dumb",
           "SHELL": "/bin/bash", KEY_ENV: "unused", "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    if tripwire is not None:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy"):
            env[name] = tripwire.url
    cmd = [shutil.which("node") or "node", str(CODEX_JS), "exec", "--json", "--strict-config",
           "--skip-git-repo-check", "--ephemeral", "--color", "never",
           "--dangerously-bypass-approvals-and-sandbox", "-C", str(workdir), prompt]
    proc = subprocess.run(cmd, cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return CodexRun(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                    proc.stderr.decode("utf-8", "replace"))
