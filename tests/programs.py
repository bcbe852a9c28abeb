"""What the fixtures that run a real program (redis-server, tinyproxy) share: finding the
binary (a skip locally, a failure under CI), a free port, and stopping the process."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

import pytest


def missing(message: str) -> None:
    """Skip the test, or fail it under CI, where every tool must be present."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def program_path(name: str, package: str, needed_by: str) -> str:
    """Return the path of program ``name``; skips the test (fails it under CI) if absent."""
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        missing("%s is not installed (apt-get install %s); %s need a real one"
                % (name, package, needed_by))
    return found or ""


def free_port() -> int:
    """Return a loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Program:
    """A program run for a test: its process, its log, and a stop that always returns."""

    proc = None  # type: Optional[subprocess.Popen]
    log_path = Path()

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Return True once ``ready()``; False (the process stopped) if it died or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return True
            try:
                # Doubles as the polling interval: returns at once if it died.
                self.proc.wait(0.02)
                return False
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Return once the process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
