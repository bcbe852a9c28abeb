"""The gateway's benchmark: ``make bench``, or
``python tests/perf/bench.py [--duration 5] [--out build/perf/bench.json]``.

Starts the fake Ollama (``backend.py``) and the gateway exactly as deployed
(``gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app``, 2 workers),
then measures every scenario twice in the same run: through the gateway, and
with the same native request sent straight to the backend. Writes all figures
to a JSON file and prints a Markdown table with the performance targets.

The scenarios: chat completions (``/v1/chat/completions``), plain and
streamed, and the same request as a Responses API call (``/v1/responses``:
``instructions`` + ``input``, stored as the SDK's default ``store: true``
asks, in a fresh SQLite file under the output directory).

Needs ``wrk`` (Debian: ``apt-get install -y wrk``; ``make bench`` installs it).
A full run takes about two and a half minutes on 2 cores (more when other work
makes it measure runs again).
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from loadgen import MissingTool, run_streams, run_wrk, wrk_path
from procs import (ROOT, CpuMeter, PssSampler, gateway_env, gateway_source, post, pss_bytes,
                   start_backend, start_gateway, stop)
import plot
from report import OTHER_LOAD_LIMIT, markdown, targets

MODEL = "llama3.2:3b-instruct-q4_K_M"
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
NATIVE = "/api/chat"
#: SSE events of a plain-text Responses stream besides one delta per chunk:
#: created, in_progress, output_item.added, content_part.added, then
#: output_text.done, content_part.done, output_item.done, completed.
RESPONSES_EXTRA_EVENTS = 8
#: Disturbed runs are measured again only this long after the start.
RETRY_BUDGET_S = 150.0


def openai_request(stream: bool, chunks: int = 200, delay_ms: float = 0) -> Dict[str, Any]:
    """Return a typical SDK chat request; the prompt tells the backend the reply's shape."""
    prompt = "In one paragraph, what does an API gateway do? chunks=%d" % chunks
    if delay_ms:
        prompt += " delay_ms=%g" % delay_ms
    return {"model": MODEL, "stream": stream, "temperature": 0.7, "max_tokens": 512,
            "messages": [{"role": "system", "content": "You are a concise assistant."},
                         {"role": "user", "content": prompt}]}


def responses_request(stream: bool, chunks: int = 200, delay_ms: float = 0) -> Dict[str, Any]:
    """Return the chat request of :func:`openai_request` as a Responses API request.

    ``instructions`` is the system message, ``input`` the user's text; the
    native body the gateway makes of it is the chat request's.
    """
    chat = openai_request(stream, chunks, delay_ms)
    system, user = chat["messages"]
    return {"model": MODEL, "stream": stream, "temperature": chat["temperature"],
            "max_output_tokens": chat["max_tokens"], "instructions": system["content"],
            "input": user["content"]}


class Bench:
    """One run: the backend, the gateway, and the figures gathered so far."""

    def __init__(self, out_dir: Path, duration: float, workers: int, retries: int,
                 worker_class: str = "gthread", extra_env: Optional[Dict[str, str]] = None) -> None:
        self.worker_class = worker_class
        # Stored responses go to a fresh SQLite file here, as the systemd unit's
        # $STATE_DIRECTORY holds them, not into the checkout's instance folder;
        # --env OLLAMA_GATEWAY_STORE=... still picks another store.
        self.state_dir = out_dir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for old in self.state_dir.glob("ollama-gateway.db*"):
            old.unlink()
        self.extra_env = dict({"STATE_DIRECTORY": str(self.state_dir)}, **(extra_env or {}))
        self.out_dir = out_dir
        self.duration = duration
        self.workers = workers
        self.retries = retries
        self.retry_until = time.monotonic() + RETRY_BUDGET_S
        self.results = {}  # type: Dict[str, Any]
        self.backend, self.backend_port = start_backend(out_dir / "backend.log")
        self.backend_cpu = CpuMeter(self.backend.pid)
        self.gateway = None  # type: Optional[subprocess.Popen]

    def body_file(self, name: str, doc: Any) -> Path:
        path = self.out_dir / (name + ".json")
        path.write_text(json.dumps(doc) if not isinstance(doc, bytes) else doc.decode())
        return path

    def start_gateway(self) -> float:
        log = self.out_dir / "gunicorn.log"
        for attempt in range(3):
            try:
                proc, self.port, seconds = start_gateway(
                    self.backend_port, log, json.dumps(openai_request(False)).encode(),
                    workers=self.workers, worker_class=self.worker_class,
                    extra_env=self.extra_env)
            except RuntimeError as exc:
                # The free port was taken between our check and gunicorn's bind.
                if attempt == 2 or "Connection in use" not in str(exc):
                    raise
            else:
                self.gateway = proc
                return seconds
        raise AssertionError("unreachable")

    def _backend_get(self, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read()
        finally:
            conn.close()

    def native_body(self, openai_doc: Dict[str, Any], path: str = CHAT) -> bytes:
        """Return exactly what the gateway sent the backend for ``openai_doc`` at ``path``.

        A streamed request works too: its whole SSE body is read and dropped.
        """
        raw = json.dumps(openai_doc).encode()
        status, body = post(self.port, path, raw)
        if status != 200:
            raise RuntimeError("the gateway answered %d to the benchmark's request: %r"
                               % (status, body[:500]))
        return self._backend_get("/bench/last-chat")

    # -- scenarios ------------------------------------------------------------

    def _measured(self, name: str, measure: Callable[[], Dict[str, Any]]) -> None:
        """Store ``measure()`` as ``name``; measure again if other work disturbed it."""
        best, best_load = {}, float("inf")  # type: Dict[str, Any], float
        attempt = 0
        while True:
            entry = measure()
            load = max(side["cpu"]["other_cores"] for side in entry.values())
            if load < best_load:
                best, best_load = entry, load
            # Retries stop at the time budget, so a busy machine cannot stretch the run much.
            again = attempt < self.retries and time.monotonic() < self.retry_until
            if load <= OTHER_LOAD_LIMIT or not again:
                break
            print("note: other work on the machine used %.2f cores during %s; measuring it "
                  "again" % (load, name), file=sys.stderr)
            attempt += 1
        self.results[name] = dict(best, attempts=attempt + 1)

    def chat(self, conns: int) -> None:
        gw_file = self.body_file("chat.openai", openai_request(False))
        direct_file = self.body_file("chat.native", self.native_body(openai_request(False)))
        self._measured("chat_c%d" % conns, lambda: {
            "direct": run_wrk("http://127.0.0.1:%d%s" % (self.backend_port, NATIVE), direct_file,
                              conns, self.duration, {"backend": self.backend_cpu},
                              self.out_dir / "wrk.log"),
            "gateway": self._gateway_run(lambda meters: run_wrk(
                "http://127.0.0.1:%d%s" % (self.port, CHAT), gw_file, conns, self.duration,
                meters, self.out_dir / "wrk.log"))})

    def responses(self, conns: int) -> None:
        """Non-streamed Responses API requests, like :meth:`chat`."""
        doc = responses_request(False)
        gw_file = self.body_file("responses.openai", doc)
        direct_file = self.body_file("responses.native", self.native_body(doc, RESPONSES))
        self._measured("responses_c%d" % conns, lambda: {
            "direct": run_wrk("http://127.0.0.1:%d%s" % (self.backend_port, NATIVE), direct_file,
                              conns, self.duration, {"backend": self.backend_cpu},
                              self.out_dir / "wrk.log"),
            "gateway": self._gateway_run(lambda meters: run_wrk(
                "http://127.0.0.1:%d%s" % (self.port, RESPONSES), gw_file, conns,
                self.duration, meters, self.out_dir / "wrk.log"))})

    def responses_stream(self, conns: int, chunks: int = 200) -> None:
        """Streamed Responses API requests, like :meth:`stream`."""
        doc = responses_request(True, chunks)
        # The streamed request itself, so the native body is exactly the streamed one.
        native = self.native_body(doc, RESPONSES)
        self.body_file("resp_stream.native", native)
        log = self.out_dir / "streamload.log"

        def measure() -> Dict[str, Any]:
            return {
                "direct": run_streams(
                    self.backend_port, NATIVE, native.decode(), "ndjson", chunks + 1, conns,
                    self.duration, {"backend": self.backend_cpu}, log),
                "gateway": self._gateway_run(lambda meters: run_streams(
                    self.port, RESPONSES, json.dumps(doc), "responses",
                    chunks + RESPONSES_EXTRA_EVENTS, conns, self.duration, meters, log))}
        self._measured("resp_stream%d_c%d" % (chunks, conns), measure)

    def stream(self, conns: int, chunks: int = 200, delay_ms: float = 0, per_conn: int = 0,
               name: str = "", direct: bool = True, duration: float = 0) -> None:
        doc = dict(openai_request(True, chunks, delay_ms))
        native = self.native_body(dict(doc, stream=False)).replace(
            b'"stream": false', b'"stream": true').replace(b'"stream":false', b'"stream":true')
        log = self.out_dir / "streamload.log"
        duration = duration or self.duration

        def measure() -> Dict[str, Any]:
            # SSE: a content event per chunk, the finish event, [DONE]; NDJSON: chunks + done
            entry = {}
            if direct:
                entry["direct"] = run_streams(
                    self.backend_port, NATIVE, native.decode(), "ndjson", chunks + 1, conns,
                    duration, {"backend": self.backend_cpu}, log, per_conn or None)
            entry["gateway"] = self._gateway_run(lambda meters: run_streams(
                self.port, CHAT, json.dumps(doc), "sse", chunks + 2, conns, duration, meters,
                log, per_conn or None))
            return entry
        self._measured(name or "stream%d_c%d" % (chunks, conns), measure)

    def _gateway_run(self, run: Any) -> Dict[str, Any]:
        since = time.monotonic()
        before = json.loads(self._backend_get("/bench/stats"))
        result = run({"gateway": CpuMeter(self.gateway.pid), "backend": self.backend_cpu})
        after = json.loads(self._backend_get("/bench/stats"))
        result["peak_pss_bytes"] = self.pss.peak_since(since)
        # 1.0: a new upstream TCP connection for every request, none reused.
        result["upstream_connections_per_request"] = (
            (after["connections"] - before["connections"] - 1)
            / max(1, after["requests"] - before["requests"] - 1))
        return result

    def warm_up(self) -> None:
        """Run both kinds of request on every worker thread once, unmeasured."""
        run_wrk("http://127.0.0.1:%d%s" % (self.port, CHAT),
                self.body_file("chat.openai", openai_request(False)), 16, 1.0, {},
                self.out_dir / "wrk.log")
        run_streams(self.port, CHAT, json.dumps(openai_request(True)), "sse", 202, 16, 1.0, {},
                    self.out_dir / "streamload.log")
        run_wrk("http://127.0.0.1:%d%s" % (self.port, RESPONSES),
                self.body_file("responses.openai", responses_request(False)), 16, 1.0, {},
                self.out_dir / "wrk.log")
        run_streams(self.port, RESPONSES, json.dumps(responses_request(True)), "responses",
                    200 + RESPONSES_EXTRA_EVENTS, 16, 1.0, {}, self.out_dir / "streamload.log")

    def startups(self, count: int) -> List[float]:
        """Return seconds from exec to the first 200 for ``count`` fresh gateways."""
        out = []
        for _ in range(count):
            stop(self.gateway)
            out.append(self.start_gateway())
        return out

    def backend_startup(self) -> float:
        started = time.perf_counter()
        proc, port = start_backend(self.out_dir / "backend2.log")
        while post(port, NATIVE, json.dumps({"model": MODEL, "stream": False}).encode())[0] != 200:
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        stop(proc)
        return seconds

    def run(self, paced_per_conn: int) -> Dict[str, Any]:
        startup = [self.start_gateway()]
        self.pss = PssSampler(self.gateway.pid)
        try:
            self.warm_up()
            for conns in (1, 16):
                self.chat(conns)
            for conns in (1, 16):
                self.stream(conns)
            for conns in (1, 16):
                self.responses(conns)
            for conns in (1, 16):
                self.responses_stream(conns)
            for chunks in (50, 200, 1000):
                self.stream(4, chunks, name="scaling%d_c4" % chunks, direct=False,
                            duration=min(self.duration, 4.0))
            self.stream(64, 200, delay_ms=20, per_conn=paced_per_conn, name="paced200_c64",
                        duration=60.0)
            peak = self.pss.peak_since(0.0)
        finally:
            self.pss.close()
        startup += self.startups(2)
        self.results["memory"] = {"gateway_peak_pss_bytes": peak,
                                  "backend_pss_bytes": pss_bytes([self.backend.pid])}
        self.results["startup"] = {"gateway_s": startup, "backend_s": self.backend_startup()}
        return self.results

    def close(self) -> None:
        if self.gateway is not None:
            stop(self.gateway)
        stop(self.backend)


def machine() -> Dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    commit, dirty = "", False
    try:  # read-only plumbing: nothing here refreshes or writes the index
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT),
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "diff-index", "--quiet", "HEAD", "--", "app", "deploy"],
                               cwd=str(ROOT), capture_output=True).returncode == 1
    except OSError:
        pass
    return {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release(), "commit": commit,
            "dirty": dirty}


def calibrate(repeats: int = 7) -> float:
    """Return the best time in ms of a fixed pure-Python loop (JSON, dicts, strings).

    On a shared or virtual machine the same code can run 30% slower from one
    minute to the next; this figure, taken before and after the run, says
    whether two runs can be compared.
    """
    doc = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 200}] * 4,
           "options": {"temperature": 0.7, "num_ctx": 8192}, "stream": None}
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(2000):
            decoded = json.loads(json.dumps(doc))
            {key: value for key, value in decoded.items() if value is not None}
            "".join([str(i) for i in range(20)])
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def steal_share(before: List[int], after: List[int]) -> float:
    """Return the share of CPU time the hypervisor took (/proc/stat "steal")."""
    delta = [b - a for a, b in zip(before, after)]
    return delta[7] / max(1, sum(delta[:8]))


def cpu_times() -> List[int]:
    with open("/proc/stat") as fh:
        return [int(v) for v in fh.readline().split()[1:]]


def busy_cores(seconds: float = 1.0) -> float:
    """Return how many cores something else keeps busy, from /proc/stat."""
    before = cpu_times()
    time.sleep(seconds)
    after = cpu_times()
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta[:8])
    idle = delta[3] + delta[4]  # idle + iowait
    return (total - idle) / total * (os.cpu_count() or 1) if total else 0.0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "perf" / "bench.json",
                        help="JSON results (logs go next to it); default build/perf/bench.json")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "gevent"),
                        help="gunicorn worker class (deploy/gunicorn.conf.py); gevent is the optional extra")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a gateway setting for this run, e.g. OLLAMA_GATEWAY_SSE_KEEPALIVE=0")
    parser.add_argument("--paced-per-conn", type=int, default=2,
                        help="streams per connection in the 64-stream paced run")
    parser.add_argument("--retries", type=int, default=2,
                        help="times a run is measured again when other work on the machine "
                             "used more than %g cores during it" % OTHER_LOAD_LIMIT)
    args = parser.parse_args(argv)
    try:
        wrk_path()
    except MissingTool as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    out_dir = args.out.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    # An installed package has its bytecode compiled (pip does it); an
    # editable checkout under PYTHONDONTWRITEBYTECODE never gets any, and
    # every gunicorn start would pay for compiling the gateway's modules.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "app")], check=True)
    busy = busy_cores()
    if busy > 0.25:
        print("warning: %.2f cores are busy before the benchmark starts; its figures will be "
              "skewed" % busy, file=sys.stderr)
    calibration = [calibrate()]
    times = cpu_times()
    started = time.time()
    extra_env = dict(item.split("=", 1) for item in args.env)
    bench = Bench(out_dir, args.duration, args.workers, args.retries, args.worker_class, extra_env)
    try:
        results = bench.run(args.paced_per_conn)
    finally:
        bench.close()
    calibration.append(calibrate())
    doc = {"machine": machine(), "workers": args.workers, "worker_class": args.worker_class,
           "env": extra_env,
           "responses_store": extra_env.get("OLLAMA_GATEWAY_STORE",
                                            "default: SQLite in %s" % os.path.relpath(
                                                str(out_dir / "state"))),
           "duration_s": args.duration,
           "gateway_source": gateway_source(gateway_env(0, args.workers)),
           "busy_cores_before": busy, "calibration_ms": calibration,
           "steal_share": steal_share(times, cpu_times()),
           "elapsed_s": time.time() - started, "results": results}
    doc["targets"] = targets(results)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True))
    print(markdown(doc))
    print("\nfull results: %s (%.0f s)" % (os.path.relpath(str(args.out)), doc["elapsed_s"]))
    try:
        print("plot: %s" % os.path.relpath(str(plot.plot(doc, args.out.with_suffix(".svg")))))
    except ImportError:
        print(plot.MISSING_MATPLOTLIB)
    return 0 if all(t["met"] for t in doc["targets"] if t["name"] == "errors") else 1


if __name__ == "__main__":
    sys.exit(main())
