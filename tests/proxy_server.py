"""A real ``tinyproxy`` on a free loopback port, for the upstream-proxy tests.

Its config file and log live in the test's directory; it runs in the
foreground (``-d``). Without the binary a test skips locally and fails under
CI (``CI=true``), naming the Debian package to install.
"""
import socket
import subprocess
from pathlib import Path
from typing import Iterable, Optional

from .programs import Program, free_port, program_path

#: The Debian package that provides the binary.
PACKAGE = "tinyproxy"


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return True
    except OSError:
        return False


class Tinyproxy(Program):
    """``tinyproxy`` bound to 127.0.0.1, allowing CONNECT to ``connect_ports``."""

    def __init__(self, workdir: Path, connect_ports: Iterable[int] = (),
                 timeout: float = 15.0) -> None:
        binary = program_path("tinyproxy", PACKAGE, "the proxy tests")
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
        return self.wait_ready(lambda: _accepts(self.port), timeout)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

