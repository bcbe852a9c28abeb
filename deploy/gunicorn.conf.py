"""gunicorn settings for the gateway: ``gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app``.

No ``bind`` here: gunicorn's own ``--bind`` / ``GUNICORN_CMD_ARGS`` decide it
(default 127.0.0.1:8000). Precedence, lowest first: this file < the
``GUNICORN_CMD_ARGS`` environment variable < the command line, so any setting
below can be overridden there too. The environment variables read here:

=====================================  ==========================================
``OLLAMA_GATEWAY_WORKER_CLASS``        ``gthread`` (default) or ``gevent``
``OLLAMA_GATEWAY_WORKERS``             processes; else ``WEB_CONCURRENCY``; else
                                       the usable CPUs, kept between 2 and 4
``OLLAMA_GATEWAY_THREADS``             threads per gthread worker (default 64)
``OLLAMA_GATEWAY_TIMEOUT``             worker liveness timeout, seconds (30)
``OLLAMA_GATEWAY_GRACEFUL_TIMEOUT``    seconds in-flight streams get on reload or
                                       stop (300)
``OLLAMA_GATEWAY_HTTP_KEEPALIVE``     idle seconds a client connection is kept (75)
``OLLAMA_GATEWAY_FORWARDED_ALLOW_IPS`` proxies whose X-Forwarded-* are trusted;
                                       else ``FORWARDED_ALLOW_IPS``; else loopback
``PROMETHEUS_MULTIPROC_DIR``           where the workers' metric files go (wiped
                                       at start); else a fresh directory in
                                       ``$RUNTIME_DIRECTORY`` or the temp dir,
                                       removed at exit
=====================================  ==========================================
"""
import os
from typing import Any


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("%s must be an integer, got %r" % (name, raw)) from None
    if value < minimum:
        raise ValueError("%s must be at least %d, got %d" % (name, minimum, value))
    return value


# gthread: the worker's main thread notifies the arbiter every second while the
# requests run in a thread pool, so a stream longer than `timeout` is not
# killed (the default sync worker only notifies between requests and is killed
# mid-stream). Plain blocking `requests` needs no monkey-patching.
# gevent (`pip install ollama-gateway[gevent]`): one greenlet per request, for
# many mostly idle streams per process; gunicorn's worker monkey-patches
# sockets after fork, before the app is imported.
worker_class = os.environ.get("OLLAMA_GATEWAY_WORKER_CLASS", "").strip() or "gthread"
if worker_class not in ("gthread", "gevent"):
    raise ValueError("OLLAMA_GATEWAY_WORKER_CLASS must be gthread or gevent, got %r"
                     % worker_class)

# Streaming is I/O-bound: a few processes with many threads. Capacity is
# workers x threads simultaneous requests (each open stream holds a thread for
# its whole life), so size it for the streams you allow, i.e. Ollama's
# OLLAMA_NUM_PARALLEL plus a queue; keep OLLAMA_GATEWAY_POOL_MAXSIZE >= threads.
# gevent ignores `threads`: gunicorn's worker_connections (1000) bounds it.
# The default follows the CPUs this process may use: 2 to 4 processes.
_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
workers = _env_int("OLLAMA_GATEWAY_WORKERS",
                   _env_int("WEB_CONCURRENCY", min(4, max(2, _cpus)), 1), 1)
threads = _env_int("OLLAMA_GATEWAY_THREADS", 64, 1)

# With gthread and gevent, `timeout` only detects a hung worker process (no
# heartbeat for that long); it does not limit how long a request or a stream
# takes. So it stays short: raising it would only hide real hangs.
timeout = _env_int("OLLAMA_GATEWAY_TIMEOUT", 30, 0)
# On reload (HUP) or stop (TERM) a worker stops accepting and in-flight streams
# get this long to finish before they are cut. Set it to the longest generation
# you are willing to wait for; systemd's TimeoutStopSec must stay above it
# (deploy/systemd/ollama-gateway.service).
graceful_timeout = _env_int("OLLAMA_GATEWAY_GRACEFUL_TIMEOUT", 300, 0)
# Behind nginx's upstream keep-alive this must exceed nginx's upstream
# `keepalive_timeout` (60 s in deploy/nginx/ollama-gateway.conf), so nginx is
# the side that closes an idle connection and never sends a request on one
# gunicorn is closing.
keepalive = _env_int("OLLAMA_GATEWAY_HTTP_KEEPALIVE", 75, 0)

# X-Forwarded-Proto and friends are trusted only from these addresses: nginx
# on the same host by default. Comma-separated addresses or CIDR networks.
forwarded_allow_ips = (os.environ.get("OLLAMA_GATEWAY_FORWARDED_ALLOW_IPS", "").strip()
                       or os.environ.get("FORWARDED_ALLOW_IPS", "").strip()
                       or "127.0.0.1,::1")

# Each worker builds the app (and so its own requests.Session) after the fork:
# a Session shared across a fork would share its sockets, and a reload (HUP)
# must build it anew (re-reading OLLAMA_GATEWAY_API_KEYS_FILE, say).
preload_app = False

if worker_class == "gthread":
    # What can be shared is loaded once here, in the master: the libraries,
    # the gateway's modules and its bundled schemas (nothing that opens a
    # socket). Workers inherit those pages from the fork instead of each
    # loading its own copy, and gc.freeze() keeps the collector from touching
    # (and so copying) them; about 25 MiB less for the whole tree with two
    # workers. Not for gevent: its workers must patch ssl before requests
    # imports it.
    import gc

    from ollama_gateway import create_app, schemas, startup  # noqa: F401

    schemas.prepare()
    gc.freeze()


def _gateway_logs_to_gunicorn() -> None:
    """Send the gateway's log lines where gunicorn's own go, unless logging is set up already."""
    import logging

    gateway, errors = logging.getLogger("ollama_gateway"), logging.getLogger("gunicorn.error")
    # --log-config / logconfig_dict (or a host's own set-up) decide otherwise;
    # without any, Python would print only warnings, bare, on stderr.
    if not gateway.hasHandlers():
        gateway.handlers = list(errors.handlers)
        gateway.setLevel(errors.level)


def _check_ollama(server: Any) -> None:
    """Log whether each configured Ollama host answers, once, here in the master."""
    _gateway_logs_to_gunicorn()
    # A preloaded app (--preload) has just checked in this process. gevent's
    # master imports no gateway code (see above), so there each worker checks.
    if worker_class == "gthread" and not server.cfg.preload_app:
        # The workers inherit the record and do not log the same hosts again;
        # the check's one-off connections are closed before any fork.
        startup.check_before_fork(os.environ)


def _metrics_dir() -> None:
    """Give the workers one directory for their metric files, empty at start.

    prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` when a worker first
    imports it (after the fork), and a scrape of any worker then adds up all
    of them. Set here in the master, not when this file is read, so that
    reading the file (a test, ``gunicorn --check-config``) changes no environment.
    """
    import importlib.util
    import tempfile

    if (os.environ.get("OLLAMA_GATEWAY_METRICS", "").strip() == "off"
            or importlib.util.find_spec("prometheus_client") is None):
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not given:
        made = tempfile.mkdtemp(prefix="ollama-gateway-metrics-",
                                dir=os.environ.get("RUNTIME_DIRECTORY") or None)
        # In the environment, not in this file's globals: a reload reads this file anew.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_MADE] = made
        return
    # Files of an earlier run would be counted again: start from nothing (only
    # prometheus_client's *.db files: the directory is the operator's).
    os.makedirs(given, exist_ok=True)
    for name in os.listdir(given):
        if name.endswith(".db"):
            os.remove(os.path.join(given, name))


_MADE = "OLLAMA_GATEWAY_METRICS_DIR_MADE"  # the directory _metrics_dir made, removed on exit


def on_starting(server: Any) -> None:
    _metrics_dir()
    _check_ollama(server)


# Before the new workers of a reload (HUP): the metric files stay, so counters
# of the old workers keep counting in the sums.
on_reload = _check_ollama


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (streams in flight) from the sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            from prometheus_client import multiprocess
        except ImportError:
            return
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if os.environ.get(_MADE):
        import shutil

        shutil.rmtree(os.environ[_MADE], ignore_errors=True)

proc_name = "ollama-gateway"

# One line per request on stdout (journald under systemd), written when the
# response is finished, so for a stream the duration is the whole stream:
#   127.0.0.1 203.0.113.7 "POST /v1/chat/completions HTTP/1.1" 200 - 5321ms rid=req_...
# The request id is the X-Request-Id the app answers with (the client's or
# nginx's, if sane, else its own), so one grep finds the request in every log.
accesslog = "-"
access_log_format = ('%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms '
                     'rid=%({x-request-id}o)s')
