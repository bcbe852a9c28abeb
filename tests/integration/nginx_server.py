"""nginx for the tests: the shipped site config (deploy/nginx/ollama-gateway.conf)
rendered with a free loopback port and a given gunicorn address, run in the
foreground with every path under a scratch directory."""
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

ROOT = Path(__file__).resolve().parents[2]
NGINX_SITE = ROOT / "deploy" / "nginx" / "ollama-gateway.conf"
# nginx lives in sbin, which a non-root PATH often lacks.
_SBIN = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])

# The http block around the site stands in for a careless one on the
# operator's side: gzip for event streams and buffering on. The site's own
# location settings must win over both.
_MAIN_CONF = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    gzip on;
    gzip_proxied any;
    gzip_min_length 1;
    gzip_types text/event-stream application/json;
    proxy_buffering on;
    include {dir}/site.conf;
}}
"""


def nginx_binary() -> str:
    """Return the nginx executable; AssertionError naming the fix if there is none."""
    found = shutil.which("nginx") or shutil.which("nginx", path=_SBIN)
    assert found, ("nginx is not installed. `make test` installs it with apt-get when it runs "
                   "as root or with password-less sudo; else run `apt-get install nginx`.")
    return found


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _replace_one(text: str, pattern: str, replacement: str, what: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count == 1, "expected exactly one %s in %s, found %d" % (what, NGINX_SITE.name, count)
    return new


def render_site(text: str, listen: str, upstream: str,
                directives: Optional[Dict[str, str]] = None) -> str:
    """Return the site config with its ``listen`` and upstream ``server`` replaced.

    :param directives: other directives to give a new value, each of which
        must occur exactly once (e.g. ``{"proxy_read_timeout": "1s"}``).
    """
    text = _replace_one(text, r"^(\s*)listen\s+[^;{\n]+;", r"\g<1>listen %s;" % listen,
                        "listen directive")
    text = _replace_one(text, r"^(\s*)server\s+[^;{\n]+;", r"\g<1>server %s;" % upstream,
                        "upstream server directive")
    for name, value in (directives or {}).items():
        text = _replace_one(text, r"^(\s*)%s\s+[^;\n]+;" % re.escape(name),
                            r"\g<1>%s %s;" % (name, value), name)
    return text


class Nginx:
    """nginx serving the shipped site on a free loopback port, in front of ``upstream``
    (``host:port``). Its error log is ``workdir/error.log``."""

    def __init__(self, workdir: Path, upstream: str, directives: Optional[Dict[str, str]] = None,
                 timeout: float = 10.0) -> None:
        self.workdir = workdir
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        site = render_site(NGINX_SITE.read_text(), "127.0.0.1:%d" % self.port, upstream, directives)
        (workdir / "site.conf").write_text(site)
        # As root, nginx's workers would switch to `nobody`, who cannot enter
        # pytest's private temporary directories.
        user = "user root root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(_MAIN_CONF.format(user=user, dir=workdir))
        self._stderr = open(str(workdir / "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(workdir) + os.sep, "-c", str(workdir / "nginx.conf")],
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start:\n" + self.log())
            time.sleep(0.02)  # polling a readiness condition, bounded by the deadline

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def log(self) -> str:
        """Return nginx's error log and anything it wrote to stderr."""
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()
