"""The benchmark's processes: start them, watch them through /proc, kill them.

Everything started here is recorded and killed at exit (its whole process
group, by the id we got when starting it), also on Ctrl-C and on errors.
"""
import atexit
import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")

_started = []  # type: List[subprocess.Popen]


def _kill_all() -> None:
    for proc in reversed(_started):
        stop(proc, grace=3.0)


atexit.register(_kill_all)


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def spawn(cmd: List[str], log_path: Path, env: Optional[Dict[str, str]] = None,
          stdin: Optional[int] = None, stdout: Optional[int] = None) -> subprocess.Popen:
    """Return a started process in its own process group, remembered for cleanup."""
    log = open(str(log_path), "ab")
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdin=stdin,
                            stdout=stdout if stdout is not None else log, stderr=log,
                            start_new_session=True)
    log.close()
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop ``proc`` and its process group: ``sig`` first, SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # leftovers of the group (e.g. gunicorn workers) go too
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)
    if proc in _started:
        _started.remove(proc)


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_backend(log_path: Path, delay_ms: float = 0.0) -> Tuple[subprocess.Popen, int]:
    """Return the started fake Ollama and its port."""
    proc = spawn([sys.executable, "-u", str(HERE / "backend.py"), "--port", "0",
                  "--delay-ms", str(delay_ms)], log_path, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        stop(proc)
        raise RuntimeError("the fake Ollama did not start; see %s" % log_path)
    return proc, int(line.rsplit(":", 1)[1])


def gateway_source(env: Dict[str, str]) -> str:
    """Return where the gateway's Python imports ``ollama_gateway`` from."""
    out = subprocess.run([sys.executable, "-c", "import ollama_gateway as m; print(m.__file__)"],
                         cwd=str(ROOT), env=env, capture_output=True, text=True)
    path = Path(out.stdout.strip() or ".").parent
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def gateway_env(backend_port: int, workers: int, worker_class: str = "gthread",
                extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Return the gateway's environment: the deploy defaults, pointed at the backend.

    ``extra`` (from ``bench.py --env``) overrides settings on purpose.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OLLAMA_GATEWAY_", "GUNICORN_")) and k != "OLLAMA_HOST"}
    env.update(OLLAMA_HOST="http://127.0.0.1:%d" % backend_port, WEB_CONCURRENCY=str(workers),
               OLLAMA_GATEWAY_WORKER_CLASS=worker_class, PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def start_gateway(backend_port: int, log_path: Path, probe_body: bytes, workers: int = 2,
                  timeout: float = 30.0, worker_class: str = "gthread",
                  extra_env: Optional[Dict[str, str]] = None) -> Tuple[subprocess.Popen, int, float]:
    """Return gunicorn as deployed, its port, and seconds from exec to the first 200.

    The probe is a real non-streaming chat completion, so the time includes
    loading the app in a worker and the first schema validation.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
           "--bind", "127.0.0.1:%d" % port, "ollama_gateway.wsgi:app"]
    started = time.perf_counter()
    proc = spawn(cmd, log_path, env=gateway_env(backend_port, workers, worker_class, extra_env))
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            break
        status, body = post(port, "/v1/chat/completions", probe_body, timeout=5.0)
        if status == 200:
            return proc, port, time.perf_counter() - started
        if status:  # up, but failing: no point in waiting
            stop(proc)
            raise RuntimeError("the gateway answered %d to a valid chat request: %s\nsee %s:\n%s"
                               % (status, body[:300].decode("utf-8", "replace"), log_path,
                                  log_path.read_text(errors="replace")[-3000:]))
        time.sleep(0.002)
    stop(proc)
    raise RuntimeError("gunicorn did not answer within %gs; see %s:\n%s"
                       % (timeout, log_path, log_path.read_text(errors="replace")[-2000:]))


def post(port: int, path: str, body: bytes, timeout: float = 10.0) -> Tuple[int, bytes]:
    """Return (status, body) of one POST to loopback; status 0 if nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


# -- /proc ---------------------------------------------------------------------

def tree(root: int) -> List[int]:
    """Return ``root`` and all its descendants' pids."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, task)) as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out


def cpu_seconds(pids: List[int]) -> Dict[int, float]:
    """Return utime+stime in seconds per pid (all threads), from /proc/<pid>/stat."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def pss_bytes(pids: List[int]) -> int:
    """Return the summed Pss of ``pids`` from /proc/<pid>/smaps_rollup."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class CpuMeter:
    """CPU time of a process tree between :meth:`start` and :meth:`stop`."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._before = {}  # type: Dict[int, float]

    def start(self) -> None:
        self._before = cpu_seconds(tree(self.root))

    def stop(self) -> Dict[str, object]:
        """Return seconds used in all and per process (an uneven split between
        workers shows there), and whether the set of processes changed meanwhile."""
        after = cpu_seconds(tree(self.root))
        per_process = {str(p): after[p] - self._before.get(p, 0.0) for p in after}
        return {"cpu_s": sum(per_process.values()), "per_process_s": per_process,
                "pids_changed": sorted(after) != sorted(self._before)}


class OtherLoad:
    """CPU that the machine spent outside the processes we measure, in cores.

    Between :meth:`start` and :meth:`stop`: user+system time of the whole
    machine (/proc/stat, interrupts left out since our own loopback traffic is
    counted there) minus what the measured trees, the load tools (our reaped
    children) and this process used. Other work on the machine shows up here.
    """

    def start(self) -> None:
        self._before = self._sample()

    @staticmethod
    def _sample() -> Tuple[float, float, float]:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:4]]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return (sum(fields) / CLK_TCK, children.ru_utime + children.ru_stime,
                own.ru_utime + own.ru_stime)

    def stop(self, measured_s: float, seconds: float) -> float:
        after = self._sample()
        machine, tools, own = (b - a for a, b in zip(self._before, after))
        return max(0.0, machine - tools - own - measured_s) / max(seconds, 1e-9)


class PssSampler:
    """Samples the tree's total PSS in a thread; :meth:`peak_since` reads the maximum."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.samples = []  # type: List[Tuple[float, int]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), pss_bytes(tree(self.root))))
            self._stop.wait(self.interval)

    def peak_since(self, since: float) -> int:
        return max((b for t, b in self.samples if t >= since), default=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
