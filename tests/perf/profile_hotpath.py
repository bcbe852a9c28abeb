"""Profile the gateway's hot path in-process: where the CPU of one request goes.

    python tests/perf/profile_hotpath.py [-n 2000] [--chunks 200] [--top 15] [--timer wall|cpu]
                                         [--only chat|stream] [--pyinstrument]
                                         [--endpoint chat|responses|both] [--no-store]

Starts the fast fake Ollama (``backend.py``) in a subprocess, builds the app
with ``create_app`` and calls it as gunicorn does (one WSGI call per request
with a ready environ, the body iterable consumed and closed), so the profile
holds the gateway's own work: Flask, validation, translation, ``requests``
to the backend, SSE framing. gunicorn's parsing and socket writes are not in
it; for those attach ``py-spy top --pid <worker>`` to a benchmark run.

``--endpoint responses`` profiles the benchmark's Responses API request
(``/v1/responses``, the chat request as ``instructions`` + ``input``) instead
of the chat completion, ``both`` profiles both; ``--only chat`` (or ``plain``)
and ``--only stream`` then pick the non-streaming or the streaming case. A
Responses request is stored, as ``store``'s default asks, in a fresh SQLite
file under ``build/perf/profile-state``; ``--no-store`` sends ``store: false``,
so the difference between the two runs is the storage's share.

Prints, for non-streaming and for streaming requests, the CPU per request
without a profiler, then the top functions by self time and by cumulative
time under ``cProfile`` (per request, in microseconds). With
``--pyinstrument`` (if installed) it also prints pyinstrument's call tree.

Named so pytest does not collect it, and not ``profile.py``: that would
shadow the stdlib module ``cProfile`` imports.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench import CHAT, RESPONSES, openai_request, responses_request
from procs import ROOT, start_backend, stop


def make_environ(body: bytes, path: str = CHAT) -> Dict[str, Any]:
    """Return the WSGI environ gunicorn builds for a JSON POST to ``path``."""
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "OpenAI/Python 1.99.0",
        "HTTP_ACCEPT": "application/json", "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.file_wrapper": None,
    }


def driver(app: Any, body: bytes, path: str = CHAT) -> Callable[[int], int]:
    """Return a function running ``n`` requests through ``app``; it returns the bytes read."""
    statuses = []  # type: List[str]

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    def run(n: int) -> int:
        size = 0
        for _ in range(n):
            del statuses[:]
            result = app(make_environ(body, path), start_response)
            try:
                for piece in result:
                    size += len(piece)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if not statuses or not statuses[0].startswith("200"):
                raise RuntimeError("the gateway answered %s" % (statuses or ["nothing"])[0])
        return size
    return run


def _where(key: Tuple[str, int, str]) -> str:
    path, line, func = key
    if path == "~":
        return func  # a C function: '<method 'recv_into' of '_socket.socket' objects>'
    for marker in ("site-packages" + os.sep, str(ROOT) + os.sep, "lib" + os.sep + "python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return "%s (%s:%d)" % (func, path, line)


# Socket and lock calls: their wall time is mostly waiting for the backend or
# another thread, so they are listed apart from the CPU hot spots.
_WAITS = ("'recv_into' of '_socket", "'recv' of '_socket", "'sendall' of '_socket",
          "'send' of '_socket", "'connect' of '_socket", "'acquire' of '_thread",
          "'get' of '_queue", "'poll' of 'select", "'select' of 'select", "time.sleep")


def _is_wait(key: Tuple[str, int, str]) -> bool:
    return key[0] == "~" and any(name in key[2] for name in _WAITS)


def top(stats: pstats.Stats, n_requests: int, key: int, count: int) -> str:
    """Return the ``count`` top rows, sorted by self (key=2) or cumulative (key=3) time."""
    items = [item for item in stats.stats.items() if not _is_wait(item[0])]
    rows = sorted(items, key=lambda item: item[1][key], reverse=True)[:count]
    out = ["  %9s %9s %8s  %s" % ("self us", "cum us", "calls", "function (per request)")]
    for func, (_cc, ncalls, tottime, cumtime, _callers) in rows:
        out.append("  %9.1f %9.1f %8.1f  %s" % (tottime * 1e6 / n_requests,
                                                cumtime * 1e6 / n_requests,
                                                ncalls / n_requests, _where(func)))
    return "\n".join(out)


def waits(stats: pstats.Stats, n_requests: int) -> str:
    """Return the socket and lock calls with their time per request."""
    rows = sorted(((k, v) for k, v in stats.stats.items() if _is_wait(k)),
                  key=lambda item: item[1][2], reverse=True)
    return ", ".join("%s %.0f us (%.1f calls)" % (_where(k).split(" of ")[0].strip("<"),
                                                  v[2] * 1e6 / n_requests, v[1] / n_requests)
                     for k, v in rows if v[2] * 1e6 / n_requests >= 1) or "none"


class ThreadProfiles:
    """cProfile in every thread started while installed (e.g. the app's upstream pool).

    ``threading.setprofile(hook)`` makes each new thread call :meth:`hook`
    first; the hook swaps itself for a ``cProfile.Profile`` of that thread.
    """

    def __init__(self, timer: Callable[[], float]) -> None:
        self.timer = timer
        self.profiles = []  # type: List[cProfile.Profile]

    def hook(self, frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile(self.timer)
        self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> "ThreadProfiles":
        threading.setprofile(self.hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        threading.setprofile(None)  # type: ignore


def profile_case(name: str, make_run: Callable[[], Callable[[int], int]], n: int, count: int,
                 timer: str, use_pyinstrument: bool) -> Dict[str, Any]:
    run = make_run()
    run(max(20, n // 10))  # warm: schemas compiled, pool connected
    cpu, main_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
    run(n)
    cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
    wall = time.perf_counter() - wall
    # perf_counter is cheap enough not to skew the ranking towards functions
    # called often; thread_time (a system call per event) is exact but does.
    clock = time.thread_time if timer == "cpu" else time.perf_counter
    profiler = cProfile.Profile(clock)
    # A fresh app, so the threads it starts (an upstream pool, say) start under
    # the profiler too; the schema caches are module-wide and stay warm.
    with ThreadProfiles(clock) as others:
        run = make_run()
        run(1)
        profiler.enable()
        run(n)
        profiler.disable()
    stats = pstats.Stats(profiler)
    for other in others.profiles:
        stats.add(other)  # a thread idle in its pool: its open calls count up to now
    print("\n== %s: %d requests; without a profiler, per request: %.3f ms CPU "
          "(%.3f ms in the request's thread), %.3f ms wall"
          % (name, n, cpu * 1e3 / n, main_cpu * 1e3 / n, wall * 1e3 / n))
    print("   (cProfile, %s, all threads (%d more than the request's), its own overhead "
          "included; waits: %s)" % ("each thread's CPU time" if timer == "cpu"
                                    else "wall-clock time", len(others.profiles),
                                    waits(stats, n)))
    print("-- top %d by self time, waits left out" % count)
    print(top(stats, n, 2, count))
    print("-- top %d by cumulative time (a pool thread's loop includes its idle time)" % count)
    print(top(stats, n, 3, count))
    if use_pyinstrument:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("(pyinstrument is not installed: pip install pyinstrument)")
        else:
            with Profiler(interval=0.0001) as prof:
                run(n)
            print(prof.output_text(unicode=True, color=False, show_all=False))
    return {"requests": n, "cpu_ms": cpu * 1e3 / n, "thread_cpu_ms": main_cpu * 1e3 / n,
            "wall_ms": wall * 1e3 / n}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per case")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per stream")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--only", choices=("chat", "plain", "stream"),
                        help="only the non-streaming (chat, plain) or the streaming case")
    parser.add_argument("--endpoint", choices=("chat", "responses", "both"), default="chat",
                        help="/v1/chat/completions (default), /v1/responses, or both")
    parser.add_argument("--no-store", action="store_true",
                        help="Responses requests with store: false (default: stored)")
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="cProfile clock: wall time (default, cheap) or the request "
                             "thread's CPU time (exact, but its cost skews the ranking)")
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    log_dir = ROOT / "build" / "perf"
    log_dir.mkdir(parents=True, exist_ok=True)
    only = "chat" if args.only == "plain" else args.only
    # Stored responses go to a fresh file here, not into the checkout's instance folder.
    state_dir = log_dir / "profile-state"
    state_dir.mkdir(exist_ok=True)
    for old in state_dir.glob("ollama-gateway.db*"):
        old.unlink()
    backend, port = start_backend(log_dir / "profile-backend.log")
    try:
        for key in [k for k in os.environ if k.startswith("OLLAMA_GATEWAY_")]:
            del os.environ[key]
        os.environ["STATE_DIRECTORY"] = str(state_dir)
        from ollama_gateway import create_app

        url = "http://127.0.0.1:%d" % port
        cases = []  # type: List[Tuple[str, str, str, Dict[str, Any], int]]
        if args.endpoint in ("chat", "both"):
            cases += [("chat", CHAT, "non-streaming chat", openai_request(False), args.n),
                      ("stream", CHAT, "streaming chat, %d chunks" % args.chunks,
                       openai_request(True, args.chunks), max(1, args.n // 4))]
        if args.endpoint in ("responses", "both"):
            extra = {"store": False} if args.no_store else {}
            stored = "not stored" if args.no_store else "stored"
            cases += [("chat", RESPONSES, "non-streaming responses (%s)" % stored,
                       dict(responses_request(False), **extra), args.n),
                      ("stream", RESPONSES, "streaming responses, %d chunks (%s)"
                       % (args.chunks, stored),
                       dict(responses_request(True, args.chunks), **extra),
                       max(1, args.n // 4))]
        for key, path, name, doc, n in cases:
            if only in (None, key):
                body = json.dumps(doc).encode()
                profile_case(name, lambda: driver(create_app(ollama_url=url), body, path), n,
                             args.top, args.timer, args.pyinstrument)
    finally:
        stop(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
