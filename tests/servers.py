"""Real servers for the tests: the gateway under werkzeug's threaded WSGI
server (in-process) or under gunicorn (a subprocess with the deploy config)."""
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
_LISTENING = re.compile(r"Listening at: (http://\S+)")


class InProcessServer:
    """A Flask app served over loopback by werkzeug's threaded server."""

    def __init__(self, app) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = "http://127.0.0.1:%d" % self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Gunicorn:
    """gunicorn running ``ollama_gateway.wsgi:app`` (or another app) with the
    deploy config, bound to a free loopback port; its log goes to ``log_path``."""

    def __init__(self, log_path: Path, env: Optional[Dict[str, str]] = None,
                 args: Optional[List[str]] = None, app: str = "ollama_gateway.wsgi:app",
                 timeout: float = 30.0) -> None:
        self.log_path = log_path
        # XDG_RUNTIME_DIR: newer gunicorns put a control socket there (else in
        # $HOME), which parallel test servers must not share.
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_RUNTIME_DIR=str(log_path.parent))
        full_env.update(env or {})
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
               "--bind", "127.0.0.1:0"] + list(args or []) + [app]
        self.proc = subprocess.Popen(cmd, env=full_env, cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._ready = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError("gunicorn did not start:\n" + self.log())

    def _drain(self) -> None:
        with open(str(self.log_path), "ab") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                match = _LISTENING.search(line.decode("utf-8", "replace"))
                if match and not self.url:
                    self.url = match.group(1)
                    self._ready.set()
        self._ready.set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        self.proc.stdout.close()
