"""Load runs: ``wrk`` for plain requests, ``streamload.py`` processes for streams.

Each run starts the given CPU meters right before the load and stops them right
after, and returns a dict of figures (milliseconds, per second, error counts).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from procs import HERE, CpuMeter, OtherLoad, spawn

LUA = HERE / "post.lua"


class MissingTool(RuntimeError):
    pass


def wrk_path() -> str:
    """Return the path of ``wrk``, or raise MissingTool saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise MissingTool("wrk is not installed: run `make bench` (it installs it), or "
                          "`apt-get install -y wrk` on Debian/Ubuntu, then try again.")
    return path


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the nearest-rank percentile of ``values`` (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(math.ceil(pct / 100.0 * len(ordered))) - 1))]


def _start_meters(meters: Dict[str, CpuMeter]) -> Tuple[OtherLoad, float]:
    other = OtherLoad()
    other.start()
    for meter in meters.values():
        meter.start()
    return other, time.perf_counter()


def _stop_meters(meters: Dict[str, CpuMeter], other: OtherLoad,
                 started: float) -> Dict[str, Any]:
    """Return each meter's CPU, and the CPU of anything else on the machine as ``other``."""
    out = {name: meter.stop() for name, meter in meters.items()}  # type: Dict[str, Any]
    wall = time.perf_counter() - started
    out["other_cores"] = other.stop(sum(m["cpu_s"] for m in out.values()), wall)
    return out


def run_wrk(url: str, body_file: Path, conns: int, duration: float,
            meters: Dict[str, CpuMeter], log_path: Path) -> Dict[str, Any]:
    """Return requests/s, latency percentiles, errors and CPU of a ``wrk`` run."""
    cmd = [wrk_path(), "-t", str(min(conns, 2)), "-c", str(conns), "-d", "%gs" % duration,
           "--timeout", "10s", "-s", str(LUA), url]
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file))
    other, started = _start_meters(meters)
    proc = spawn(cmd, log_path, env=env, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=duration + 30)
    cpu = _stop_meters(meters, other, started)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError("wrk failed (exit %s):\n%s" % (proc.returncode, out.decode()[-2000:]))
    raw = json.loads(line.split(" ", 1)[1])
    seconds = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {"conns": conns, "requests": raw["requests"], "seconds": seconds,
            "rps": raw["requests"] / seconds, "p50_ms": raw["p50_us"] / 1e3,
            "p90_ms": raw["p90_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3,
            "max_ms": raw["max_us"] / 1e3,
            "bytes_per_response": raw["bytes"] / max(1, raw["requests"]),
            "errors": errors, "error_detail": {k: raw[k] for k in (
                "non2xx", "connect", "read", "write", "timeout")},
            "cpu": cpu, "count": raw["requests"]}


def run_streams(port: int, path: str, body: str, kind: str, min_events: int, conns: int,
                duration: float, meters: Dict[str, CpuMeter], log_path: Path,
                per_conn: Optional[int] = None, procs: Optional[int] = None) -> Dict[str, Any]:
    """Return streams/s, events/s, first-event and total times, errors and CPU.

    The connections are split over ``procs`` client processes (default: one
    per 8 connections, at most 2 on this 2-core machine); every stream started
    before the deadline runs to its end, so CPU per stream is exact.
    """
    procs = procs or max(1, min(2, (conns + 7) // 8))
    shares = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    clients = []
    for share in shares:
        cfg = {"host": "127.0.0.1", "port": port, "path": path, "body": body, "kind": kind,
               "min_events": min_events, "conns": share, "duration": duration}
        if per_conn:
            cfg["per_conn"] = per_conn
        clients.append(spawn([sys.executable, str(HERE / "streamload.py"), json.dumps(cfg)],
                             log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for client in clients:
        if client.stdout.readline().strip() != b"ready":
            raise RuntimeError("a stream client did not start; see %s" % log_path)
    other, started = _start_meters(meters)
    for client in clients:
        client.stdin.write(b"go\n")
        client.stdin.flush()
    results = []
    for client in clients:
        out, _ = client.communicate(timeout=duration + 120)
        if client.returncode != 0:
            raise RuntimeError("a stream client failed (exit %s); see %s"
                               % (client.returncode, log_path))
        results.append(json.loads(out))
    wall = time.perf_counter() - started
    cpu = _stop_meters(meters, other, started)
    records = [r for res in results for r in res["records"]]
    good = [r for r in records if r[3]]
    seconds = max(res["wall_s"] for res in results)
    events = sum(r[2] for r in good)
    return {"conns": conns, "streams": len(records), "seconds": seconds, "wall_s": wall,
            "streams_per_s": len(good) / seconds, "events_per_s": events / seconds,
            "events_per_stream": events / max(1, len(good)),
            "first_p50_ms": percentile([r[0] for r in good], 50) * 1e3,
            "first_p99_ms": percentile([r[0] for r in good], 99) * 1e3,
            "done_p50_ms": percentile([r[1] for r in good], 50) * 1e3,
            "done_p99_ms": percentile([r[1] for r in good], 99) * 1e3,
            "errors": len(records) - len(good),
            "client_cpu_share": max(res["cpu_s"] / max(res["wall_s"], 1e-9) for res in results),
            "client_procs": procs, "cpu": cpu, "count": len(records)}
