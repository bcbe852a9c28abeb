"""The start-up check: does each configured Ollama host answer ``GET /api/version``?

It logs one line per host on the ``ollama_gateway`` logger, INFO with the
version or a WARNING naming the URL, the error and the settings to fix, and
never fails start-up: Ollama may well come up after the gateway. The hosts
are asked in parallel, each on a one-off client of its own (closed before the
check returns), so the app's pools stay empty and nothing is open when
gunicorn forks.

Under gunicorn (``deploy/gunicorn.conf.py``) the master checks the hosts its
environment names (:func:`check_before_fork`) and the workers it forks
inherit the record of it, so their apps do not log the same lines again.
"""
import logging
import os
import socket
import threading
import time
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from .config import load_settings
from .errors import APIError
from .translate import ModelMap
from .upstream import OllamaClient

log = logging.getLogger("ollama_gateway")

#: Seconds a host has to answer, connecting included.
TIMEOUT = 1.0
#: What a non-answer is fixed with; named in the warning.
_FIX = "set OLLAMA_HOST or OLLAMA_GATEWAY_OLLAMA_URL to where Ollama listens"

# The gunicorn master's pid and the hosts it reported on. A forked worker
# inherits this and skips those hosts; in the master itself, and in any
# process that never ran check_before_fork, it changes nothing.
_reported_before_fork = (0, frozenset())  # type: Tuple[int, FrozenSet[str]]


def _reason(exc: BaseException, timeout: float) -> str:
    """Return a short reason for a failed check, e.g. ``connection refused``."""
    cause = exc.__cause__
    for _ in range(4):  # urllib3 wraps the socket error (NewConnectionError, ...)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, (socket.timeout, TimeoutError)) or "Timeout" in type(cause).__name__:
            return "no answer within %g s" % timeout
        if cause is None:
            break
        cause = cause.__cause__ or cause.__context__
    return exc.message if isinstance(exc, APIError) else str(exc)


def _ask(url: str, trust_env: bool, ca_bundle: Optional[str], timeout: float,
         results: Dict[str, str]) -> None:
    """Store ``"version 0.x"`` or ``"error: ..."`` for ``url`` in ``results``."""
    # One connection, closed right after: not the app's pool, which must hold
    # nothing from the gunicorn master when it forks.
    client = OllamaClient(url, connect_timeout=timeout, read_timeout=timeout, pool_maxsize=1,
                          trust_env=trust_env, ca_bundle=ca_bundle)
    try:
        body = client.get_json("/api/version", read_timeout=timeout)
        version = body.get("version") if isinstance(body, dict) else None
        results[url] = ("version %s" % version if isinstance(version, str)
                        else "error: no version in its answer to /api/version")
    except (APIError, ValueError) as exc:
        results[url] = "error: " + _reason(exc, timeout)
    finally:
        client.close()


def check_hosts(urls: Iterable[str], trust_env: bool = False, ca_bundle: Optional[str] = None,
                timeout: float = TIMEOUT) -> Dict[str, Optional[str]]:
    """Return each host's version, or ``None`` where it did not answer; log a line for each.

    All hosts are asked at once and waited for ``timeout`` seconds in all,
    so several dead hosts cost no more than one.
    """
    hosts = list(dict.fromkeys(urls))
    results = {}  # type: Dict[str, str]
    threads = [threading.Thread(target=_ask, args=(url, trust_env, ca_bundle, timeout, results),
                                name="ollama-gateway-check", daemon=True) for url in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # A connect that took most of the second may still be reading; its own
    # timeouts end it within another `timeout`, and before a fork it must
    # have closed its socket.
    late = [thread for thread in threads if thread.is_alive()]
    for thread in late:
        thread.join(timeout)
    versions = {}  # type: Dict[str, Optional[str]]
    for url in hosts:
        outcome = results.get(url, "error: no answer within %g s" % timeout)
        if outcome.startswith("version "):
            log.info("Ollama at %s answers: %s", url, outcome)
            versions[url] = outcome[len("version "):]
        else:
            log.warning("Ollama at %s does not answer (%s); %s", url,
                        outcome[len("error: "):], _FIX)
            versions[url] = None
    return versions


def unreported(urls: Iterable[str]) -> List[str]:
    """Return the hosts of ``urls`` that the parent gunicorn master did not check already."""
    pid, reported = _reported_before_fork
    hosts = list(dict.fromkeys(urls))
    if pid in (0, os.getpid()):
        return hosts
    return [url for url in hosts if url not in reported]


def check_before_fork(environ: Mapping[str, str]) -> Dict[str, Optional[str]]:
    """Return :func:`check_hosts` for the hosts ``environ`` configures; workers forked later skip them.

    For the gunicorn master, which has no app: the settings come from the
    environment alone, as ``ollama_gateway.wsgi:app`` reads them.
    """
    global _reported_before_fork
    conf = load_settings(environ, {})
    urls = ModelMap(conf.model_aliases, conf.allowed_models, conf.upstreams,
                    conf.ollama_url).urls
    versions = check_hosts(urls, conf.trust_env, conf.ca_bundle)
    _reported_before_fork = (os.getpid(), frozenset(versions))
    return versions
