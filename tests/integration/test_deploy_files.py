"""The deploy files on their own: gunicorn.conf.py's settings and environment,
the timeouts and limits that must line up across gunicorn, nginx, systemd and
the app, and the systemd unit checked by systemd-analyze (installed by
`make test`; a missing one fails these tests)."""
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from ollama_gateway.config import KEYS, load_settings

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
NGINX_SITE = DEPLOY / "nginx" / "ollama-gateway.conf"
UNIT = DEPLOY / "systemd" / "ollama-gateway.service"
ENV_FILE = DEPLOY / "systemd" / "ollama-gateway.env"
CONF_ENV = ("OLLAMA_GATEWAY_WORKER_CLASS", "OLLAMA_GATEWAY_WORKERS", "WEB_CONCURRENCY",
            "OLLAMA_GATEWAY_THREADS", "OLLAMA_GATEWAY_TIMEOUT", "OLLAMA_GATEWAY_GRACEFUL_TIMEOUT",
            "OLLAMA_GATEWAY_HTTP_KEEPALIVE", "OLLAMA_GATEWAY_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS")


def gunicorn_conf(monkeypatch: Any, **env: str) -> Dict[str, Any]:
    """Return the settings gunicorn.conf.py defines under exactly ``env``."""
    for name in CONF_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def seconds(value: str) -> float:
    """Return an nginx/systemd time value (``360s``, ``5m``, ``330``) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|min|h)?", value.strip())
    assert match, value
    return int(match.group(1)) * {None: 1, "s": 1, "ms": 0.001, "m": 60, "min": 60,
                                  "h": 3600}[match.group(2)]


def directive(text: str, name: str, separator: str = r"\s+") -> str:
    """Return the value of the one ``name`` directive (nginx, or systemd with ``=``)."""
    found = re.findall(r"^\s*%s%s([^;\n]+?);?\s*$" % (re.escape(name), separator), text, re.M)
    assert len(found) == 1, "%s: %r" % (name, found)
    return found[0]


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert found, ("%s is not installed. `make test` installs it with apt-get (package systemd) "
                   "when it runs as root or with password-less sudo." % name)
    return found


# -- gunicorn.conf.py --------------------------------------------------------------------------

def test_gunicorn_defaults(monkeypatch):
    conf = gunicorn_conf(monkeypatch)
    assert "bind" not in conf  # --bind / GUNICORN_CMD_ARGS decide
    assert conf["worker_class"] == "gthread"
    assert 2 <= conf["workers"] <= 4 and conf["threads"] == 64
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (30, 300, 75)
    assert conf["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert conf["preload_app"] is False
    for atom in ("%(s)s", "%(M)s", "%({x-request-id}o)s"):
        assert atom in conf["access_log_format"]


def test_gunicorn_environment(monkeypatch):
    conf = gunicorn_conf(monkeypatch, OLLAMA_GATEWAY_WORKER_CLASS="gevent",
                         OLLAMA_GATEWAY_WORKERS="3", OLLAMA_GATEWAY_THREADS="40",
                         OLLAMA_GATEWAY_TIMEOUT="10", OLLAMA_GATEWAY_GRACEFUL_TIMEOUT="600",
                         OLLAMA_GATEWAY_HTTP_KEEPALIVE="90",
                         OLLAMA_GATEWAY_FORWARDED_ALLOW_IPS="10.0.0.0/8")
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gevent", 3, 40)
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (10, 600, 90)
    assert conf["forwarded_allow_ips"] == "10.0.0.0/8"
    # gunicorn's own variables are the fallbacks
    conf = gunicorn_conf(monkeypatch, WEB_CONCURRENCY="5", FORWARDED_ALLOW_IPS="192.0.2.1")
    assert (conf["workers"], conf["forwarded_allow_ips"]) == (5, "192.0.2.1")


@pytest.mark.parametrize("name, value, message", [
    pytest.param("OLLAMA_GATEWAY_WORKER_CLASS", "sync", "gthread or gevent", id="sync-worker"),
    pytest.param("OLLAMA_GATEWAY_THREADS", "many", "OLLAMA_GATEWAY_THREADS must be an integer",
                 id="not-a-number"),
    pytest.param("OLLAMA_GATEWAY_WORKERS", "0", "OLLAMA_GATEWAY_WORKERS must be at least 1",
                 id="no-workers"),
])
def test_gunicorn_refuses_bad_environment(monkeypatch, name, value, message):
    with pytest.raises(ValueError, match=message):
        gunicorn_conf(monkeypatch, **{name: value})


# -- what must line up ---------------------------------------------------------------------------

def test_limits_line_up(monkeypatch):
    conf = gunicorn_conf(monkeypatch)
    app = load_settings({}, {})
    site, unit = NGINX_SITE.read_text(), UNIT.read_text()
    # systemd kills only after gunicorn's grace for in-flight streams is over.
    assert seconds(directive(unit, "TimeoutStopSec", "=")) > conf["graceful_timeout"]
    # nginx closes idle upstream connections before gunicorn would.
    assert seconds(directive(site, "keepalive_timeout")) < conf["keepalive"]
    # The gateway's own 504 (after READ_TIMEOUT) comes before nginx's, and a
    # stream's keep-alive comments come well within nginx's idle limit.
    read_timeout = seconds(directive(site, "proxy_read_timeout"))
    assert read_timeout > app.connect_timeout + app.read_timeout
    assert read_timeout > 2 * app.sse_keepalive
    # The same body limit at both doors: base64 images fit through nginx.
    body = directive(site, "client_max_body_size")
    assert re.fullmatch(r"\d+m", body)
    assert int(body[:-1]) * 1024 * 1024 == app.max_body_bytes


def test_env_file_names_known_settings():
    known = set(KEYS) | set(CONF_ENV) | {"GUNICORN_CMD_ARGS", "OLLAMA_HOST", "PYTHONUNBUFFERED"}
    for line in ENV_FILE.read_text().splitlines():
        if not line.strip() or re.match(r"#(\s|$)", line):
            continue  # prose; settings, commented out or not, are NAME=value at the line start
        match = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=(\S.*)", line)
        # systemd takes a `#` after a value as part of the value.
        assert match and "#" not in match.group(2), "not NAME=value: %r" % line
        assert match.group(1) in known, "unknown setting %s" % match.group(1)


# -- systemd ---------------------------------------------------------------------------------------

@pytest.fixture
def unit_copy(tmp_path) -> Path:
    """The unit with ExecStart's executable pointed at this gunicorn, which
    ``systemd-analyze verify`` insists exists."""
    text = UNIT.read_text()
    executable = directive(text, "ExecStart", "=").split()[0]
    here = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or sys.executable
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("ExecStart=" + executable, "ExecStart=" + here))
    return copy


def test_systemd_unit_verifies(unit_copy):
    result = subprocess.run([tool("systemd-analyze"), "verify", str(unit_copy)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stdout
    # Unknown keys and bad values are only warnings, which name the file.
    assert unit_copy.name not in result.stdout, result.stdout


def test_systemd_unit_is_sandboxed(unit_copy, capsys):
    result = subprocess.run([tool("systemd-analyze"), "security", "--offline=true",
                             "--threshold=25", str(unit_copy)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    overall = re.search(r"Overall exposure level for \S+: ([\d.]+ \w+)", result.stdout)
    assert overall, result.stdout[-2000:]
    with capsys.disabled():
        print("\nsystemd-analyze security: exposure %s" % overall.group(1))
    assert result.returncode == 0, "exposure above 2.5:\n" + result.stdout


def test_systemd_unit_semantics():
    unit = UNIT.read_text()
    assert directive(unit, "Type", "=") == "notify"  # gunicorn sends READY=1
    assert directive(unit, "ExecReload", "=") == "/bin/kill -HUP $MAINPID"
    assert directive(unit, "KillMode", "=") == "mixed"
    assert directive(unit, "Restart", "=") == "on-failure"
    after = " ".join(re.findall(r"^After=(.*)$", unit, re.M)).split()
    assert "network-online.target" in after
    assert os.path.basename(directive(unit, "ExecStart", "=").split()[0]) == "gunicorn"
