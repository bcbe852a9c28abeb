"""A real ``tinyproxy`` on a free loopback port, for the upstream-proxy tests.

Its config file and log live in the test's directory; it runs in the
foreground (``-d``). Without the binary a test skips locally and fails under
CI (``CI=true``), naming the Debian package to install.
"""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Optional

import pytest

#: The Debian package that provides the binary.
PACKAGE = "tinyproxy"


def tinyproxy_binary() -> str:
    """Return the path of ``tinyproxy``; skips the test (fails it under CI) if absent."""
    found = shutil.which("tinyproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found:
        return found
    message = ("tinyproxy is not installed (apt-get install %s); the proxy tests need a "
               "real one" % PACKAGE)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
    return ""  # not reached


def free_port() -> int:
    """Return a loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return True
    except OSError:
        return False


class Tinyproxy:
    """``tinyproxy`` bound to 127.0.0.1, allowing CONNECT to ``connect_ports``."""

    def __init__(self, workdir: Path, connect_ports: Iterable[int] = (),
                 timeout: float = 15.0) -> None:
        binary = tinyproxy_binary()
        self.conf_path = workdir / "tinyproxy.conf"
        self.log_path = workdir / "tinyproxy.log"
        self.connect_ports = tuple(connect_ports)
        self.proc: Optional[subprocess.Popen] = None
        # A free port may be taken again before tinyproxy binds it: try a few.
        for _ in range(3):
            self.port = free_port()
            if self._start(binary, timeout):
                return
        raise RuntimeError("tinyproxy did not start:\n" + self.log())

    def _start(self, binary: str, timeout: float) -> bool:
        """Return whether the proxy came up and accepts connections within ``timeout``."""
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30",
                 'LogFile "%s"' % self.log_path, "LogLevel Info", "MaxClients 64"]
        lines += ["ConnectPort %d" % port for port in self.connect_ports]
        self.conf_path.write_text("\n".join(lines) + "\n")
        with open(str(self.log_path.with_suffix(".out")), "ab") as out:
            self.proc = subprocess.Popen([binary, "-d", "-c", str(self.conf_path)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _accepts(self.port):
                return True
            try:
                # Doubles as the polling interval: returns at once if it died.
                self.proc.wait(0.02)
                return False
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return False

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Return once the proxy has exited."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "Tinyproxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
