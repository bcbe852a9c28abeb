"""A real ``redis-server`` for the tests, on a free loopback port, nothing on disk.

``redis_url`` is a session fixture; ``RedisServer`` starts further short-lived
servers (to stop one under a test). Without the binary a test skips locally
and fails under CI (``CI=true``), naming the Debian package to install.
"""
import socket
import subprocess
from pathlib import Path
from typing import Iterator, Optional

import pytest

from .programs import Program, free_port, program_path, missing

#: The Debian package that provides the binary.
PACKAGE = "redis-server"


def _answers_ping(port: int) -> bool:
    """Return whether a server on ``port`` answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Program):
    """``redis-server`` without persistence, bound to 127.0.0.1 on a free port."""

    def __init__(self, workdir: Path, timeout: float = 15.0, unix_socket: bool = False) -> None:
        binary = program_path("redis-server", PACKAGE, "the Redis store tests")
        self.log_path = workdir / "redis.log"
        #: Also listen on this socket (``unix_url``), if asked to.
        self.socket_path = workdir / "redis.sock" if unix_socket else None
        self.proc: Optional[subprocess.Popen] = None
        # A free port may be taken again before redis binds it: try a few.
        for _ in range(3):
            self.port = free_port()
            if self._start(binary, workdir, timeout):
                return
        raise RuntimeError("redis-server did not start:\n" + self.log())

    def _start(self, binary: str, workdir: Path, timeout: float) -> bool:
        """Return whether the server came up and answers PING within ``timeout``."""
        cmd = [binary, "--save", "", "--appendonly", "no", "--port", str(self.port),
               "--bind", "127.0.0.1", "--dir", str(workdir), "--daemonize", "no"]
        if self.socket_path is not None:
            cmd += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        with open(str(self.log_path), "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(workdir))
        return self.wait_ready(lambda: _answers_ping(self.port), timeout)

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port

    @property
    def unix_url(self) -> str:
        return "unix://%s?db=0" % self.socket_path

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (``redis://127.0.0.1:PORT/0``) of a redis-server shared by the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


def redis_client(url: str):
    """Return a ``redis.Redis`` for ``url``; skips (fails under CI) without the package."""
    try:
        import redis
    except ImportError:
        missing("the redis package is not installed (pip install 'ollama-gateway[redis]')")
        raise  # not reached: _missing raises
    return redis.Redis.from_url(url)
