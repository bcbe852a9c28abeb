"""The performance targets checked against a run, and the Markdown table of a run."""
import statistics
from typing import Any, Dict, List, Optional, Tuple

MIB = 1024.0 * 1024.0
#: Responses API targets, relative to chat's figure of the same run and conns.
RESPONSES_CPU_FACTOR = 1.3
RESPONSES_STREAM_CPU_FACTOR = 1.5
#: Cores of other work during a run above which its figures are flagged.
OTHER_LOAD_LIMIT = 0.15


def cpu_ms(run: Dict[str, Any], who: str = "gateway") -> float:
    """Return ``who``'s CPU milliseconds per request or stream of a run."""
    return run["cpu"][who]["cpu_s"] * 1e3 / max(1, run["count"])


def _target(name: str, label: str, value: float, limit: float, unit: str) -> Dict[str, Any]:
    return {"name": name, "label": label, "value": value, "limit": limit, "unit": unit,
            "met": value <= limit}


def _relative(name: str, label: str, value: float, factor: float, base: float, base_name: str,
              unit: str) -> Dict[str, Any]:
    """Return a target whose limit is ``factor`` times another figure of the same run."""
    return dict(_target(name, label, value, factor * base, unit), factor=factor,
                relative_to=base_name, base=base)


def responses_targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return the Responses API targets (none for a run without its scenarios)."""
    out = []
    for conns in (1, 16):
        chat, resp = results.get("chat_c%d" % conns), results.get("responses_c%d" % conns)
        if chat and resp:
            out.append(_relative(
                "cpu_responses_c%d" % conns, "CPU per Responses request, %d conn" % conns,
                cpu_ms(resp["gateway"]), RESPONSES_CPU_FACTOR, cpu_ms(chat["gateway"]),
                "chat_c%d" % conns, "ms"))
    for conns in (1, 16):
        chat = results.get("stream200_c%d" % conns)
        resp = results.get("resp_stream200_c%d" % conns)
        if chat and resp:
            out.append(_relative(
                "cpu_resp_stream_c%d" % conns,
                "CPU per Responses 200-chunk stream, %d conn" % conns, cpu_ms(resp["gateway"]),
                RESPONSES_STREAM_CPU_FACTOR, cpu_ms(chat["gateway"]),
                "stream200_c%d" % conns, "ms"))
    return out


def errors(results: Dict[str, Any]) -> Tuple[int, int]:
    """Return (gateway, direct) error totals over every scenario."""
    gateway = direct = 0
    for entry in results.values():
        if isinstance(entry, dict) and "gateway" in entry:
            gateway += entry["gateway"]["errors"]
            direct += entry.get("direct", {}).get("errors", 0)
    return gateway, direct


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return the performance targets with the measured values."""
    c1, c16 = results["chat_c1"], results["chat_c16"]
    s1, s16 = results["stream200_c1"], results["stream200_c16"]
    return [
        _target("cpu_chat_c1", "CPU per chat request, 1 conn", cpu_ms(c1["gateway"]), 0.8,
                "ms"),
        _target("cpu_chat_c16", "CPU per chat request, 16 conn", cpu_ms(c16["gateway"]), 0.8,
                "ms"),
        _target("cpu_stream_c1", "CPU per 200-chunk stream, 1 conn", cpu_ms(s1["gateway"]),
                2.5, "ms"),
        _target("cpu_stream_c16", "CPU per 200-chunk stream, 16 conn", cpu_ms(s16["gateway"]),
                2.5, "ms"),
        _target("added_p50", "added p50 latency, 1 conn",
                c1["gateway"]["p50_ms"] - c1["direct"]["p50_ms"], 0.8, "ms"),
        _target("added_first_p50", "added p50 time to first event, 1 conn",
                s1["gateway"]["first_p50_ms"] - s1["direct"]["first_p50_ms"], 0.8, "ms"),
        _target("first_p99_c16", "p99 time to first event, 16 conn",
                s16["gateway"]["first_p99_ms"], 25.0, "ms"),
        _target("peak_pss", "peak PSS, whole gunicorn tree",
                results["memory"]["gateway_peak_pss_bytes"] / MIB, 65.0, "MiB"),
        _target("startup", "start to first response (median of 3)",
                statistics.median(results["startup"]["gateway_s"]), 0.5, "s"),
        _target("errors", "errors, all scenarios", float(errors(results)[0]), 0.0, ""),
    ] + responses_targets(results)


def _n(value: float) -> str:
    """Return a figure with 3 significant digits and thousands separators."""
    if value >= 100:
        return "{:,.0f}".format(value)
    if value >= 10:
        return "%.1f" % value
    if value >= 1:
        return "%.2f" % value
    return "%.3f" % value


def _pair(a: float, b: float, unit: str = "") -> str:
    return "%s / %s%s" % (_n(a), _n(b), " " + unit if unit else "")


def _ratio(a: float, b: float) -> str:
    return "%s×" % _n(a / b) if b else "–"


def _met(doc: Dict[str, Any], name: str) -> Tuple[str, str]:
    t = next(t for t in doc["targets"] if t["name"] == name)
    met = "yes" if t["met"] else "**no**"
    if "factor" in t:
        what = "chat" if t["relative_to"].startswith("chat") else "chat stream"
        return ("≤ %g× %s (%s %s)" % (t["factor"], what, _n(t["limit"]), t["unit"]), met)
    return ("≤ %g %s" % (t["limit"], t["unit"])).strip(), met


def markdown(doc: Dict[str, Any]) -> str:
    """Return the run as a Markdown table (gateway, direct, ratio, target, met)."""
    r = doc["results"]
    rows = []  # type: List[Tuple[str, str, str, str, str, str]]

    def row(label: str, gw: str, direct: str, ratio: str, target: Optional[str] = None) -> None:
        goal, met = _met(doc, target) if target else ("", "")
        if target in ("added_p50", "added_first_p50"):
            t = next(t for t in doc["targets"] if t["name"] == target)
            goal = "added p50 %s (+%s ms)" % (goal, _n(t["value"]))
        rows.append((label, gw, direct, ratio, goal, met))

    for conns in (1, 16):
        g, d = r["chat_c%d" % conns]["gateway"], r["chat_c%d" % conns]["direct"]
        row("chat, %d conn: requests/s" % conns, _n(g["rps"]), _n(d["rps"]),
            _ratio(g["rps"], d["rps"]))
        row("chat, %d conn: latency p50 / p99 (ms)" % conns, _pair(g["p50_ms"], g["p99_ms"]),
            _pair(d["p50_ms"], d["p99_ms"]), _ratio(g["p50_ms"], d["p50_ms"]),
            "added_p50" if conns == 1 else None)
        row("chat, %d conn: CPU per request (ms)" % conns, _n(cpu_ms(g)), _n(cpu_ms(d, "backend")),
            _ratio(cpu_ms(g), cpu_ms(d, "backend")), "cpu_chat_c%d" % conns)
    for conns in (1, 16):
        g, d = r["stream200_c%d" % conns]["gateway"], r["stream200_c%d" % conns]["direct"]
        row("stream 200, %d conn: streams/s, chunks/s" % conns,
            _pair(g["streams_per_s"], g["events_per_s"]),
            _pair(d["streams_per_s"], d["events_per_s"]),
            _ratio(g["streams_per_s"], d["streams_per_s"]))
        row("stream 200, %d conn: first event p50 / p99 (ms)" % conns,
            _pair(g["first_p50_ms"], g["first_p99_ms"]),
            _pair(d["first_p50_ms"], d["first_p99_ms"]),
            _ratio(g["first_p50_ms"], d["first_p50_ms"]),
            "added_first_p50" if conns == 1 else "first_p99_c16")
        row("stream 200, %d conn: [DONE] p50 / p99 (ms)" % conns,
            _pair(g["done_p50_ms"], g["done_p99_ms"]), _pair(d["done_p50_ms"], d["done_p99_ms"]),
            _ratio(g["done_p50_ms"], d["done_p50_ms"]))
        row("stream 200, %d conn: CPU per stream (ms)" % conns, _n(cpu_ms(g)),
            _n(cpu_ms(d, "backend")),
            _ratio(cpu_ms(g), cpu_ms(d, "backend")), "cpu_stream_c%d" % conns)
    for conns in (1, 16):
        if "responses_c%d" % conns not in r:
            continue
        g, d = r["responses_c%d" % conns]["gateway"], r["responses_c%d" % conns]["direct"]
        row("responses, %d conn: requests/s" % conns, _n(g["rps"]), _n(d["rps"]),
            _ratio(g["rps"], d["rps"]))
        row("responses, %d conn: latency p50 / p99 (ms)" % conns,
            _pair(g["p50_ms"], g["p99_ms"]), _pair(d["p50_ms"], d["p99_ms"]),
            _ratio(g["p50_ms"], d["p50_ms"]))
        row("responses, %d conn: CPU per request (ms)" % conns, _n(cpu_ms(g)),
            _n(cpu_ms(d, "backend")), _ratio(cpu_ms(g), cpu_ms(d, "backend")),
            "cpu_responses_c%d" % conns)
    for conns in (1, 16):
        name = "resp_stream200_c%d" % conns
        if name not in r:
            continue
        g, d = r[name]["gateway"], r[name]["direct"]
        row("responses stream 200, %d conn: streams/s, events/s" % conns,
            _pair(g["streams_per_s"], g["events_per_s"]),
            _pair(d["streams_per_s"], d["events_per_s"]),
            _ratio(g["streams_per_s"], d["streams_per_s"]))
        row("responses stream 200, %d conn: first delta p50 / p99 (ms)" % conns,
            _pair(g["first_p50_ms"], g["first_p99_ms"]),
            _pair(d["first_p50_ms"], d["first_p99_ms"]),
            _ratio(g["first_p50_ms"], d["first_p50_ms"]))
        row("responses stream 200, %d conn: response.completed p50 / p99 (ms)" % conns,
            _pair(g["done_p50_ms"], g["done_p99_ms"]), _pair(d["done_p50_ms"], d["done_p99_ms"]),
            _ratio(g["done_p50_ms"], d["done_p50_ms"]))
        row("responses stream 200, %d conn: CPU per stream (ms)" % conns, _n(cpu_ms(g)),
            _n(cpu_ms(d, "backend")), _ratio(cpu_ms(g), cpu_ms(d, "backend")),
            "cpu_resp_stream_c%d" % conns)
    scaling = [r["scaling%d_c4" % n]["gateway"] for n in (50, 200, 1000)]
    row("CPU per stream, 50 / 200 / 1,000 chunks, 4 conn (ms)",
        " / ".join(_n(cpu_ms(g)) for g in scaling),
        " / ".join(_n(cpu_ms(g, "backend")) for g in scaling),
        " / ".join(_ratio(cpu_ms(g), cpu_ms(g, "backend")) for g in scaling))
    g, d = r["paced200_c64"]["gateway"], r["paced200_c64"]["direct"]
    row("64 streams, 20 ms/token: first event p50 / p99 (ms)",
        _pair(g["first_p50_ms"], g["first_p99_ms"]), _pair(d["first_p50_ms"], d["first_p99_ms"]),
        _ratio(g["first_p50_ms"], d["first_p50_ms"]))
    row("64 streams, 20 ms/token: [DONE] p50 / p99 (ms)",
        _pair(g["done_p50_ms"], g["done_p99_ms"]), _pair(d["done_p50_ms"], d["done_p99_ms"]),
        _ratio(g["done_p50_ms"], d["done_p50_ms"]))
    mem = r["memory"]
    row("peak PSS, master + workers (MiB)", _n(mem["gateway_peak_pss_bytes"] / MIB),
        _n(mem["backend_pss_bytes"] / MIB), _ratio(mem["gateway_peak_pss_bytes"],
                                                   mem["backend_pss_bytes"]), "peak_pss")
    start = r["startup"]
    row("start to first response, median (max) of 3 (s)",
        "%s (%s)" % (_n(statistics.median(start["gateway_s"])), _n(max(start["gateway_s"]))),
        _n(start["backend_s"]), _ratio(statistics.median(start["gateway_s"]), start["backend_s"]),
        "startup")
    gw_errors, direct_errors = errors(r)
    row("errors (non-2xx, socket, truncated), all runs", str(gw_errors), str(direct_errors), "",
        "errors")

    m = doc["machine"]
    lines = ["Benchmark %s, %d cores (%s), Python %s, commit %s%s, %d gunicorn workers, %g s runs."
             % (m["date"], m["cores"], m["cpu"] or "unknown CPU", m["python"], m["commit"] or "?",
                " with uncommitted changes" if m.get("dirty") else "", doc["workers"],
                doc["duration_s"])]
    lines.append("Machine speed: a fixed pure-Python loop took %.1f ms before and %.1f ms after "
                 "the run (compare runs only when these agree); the hypervisor took %.1f%% "
                 "of the CPU time." % (doc["calibration_ms"][0], doc["calibration_ms"][1],
                                       doc["steal_share"] * 100))
    if doc.get("busy_cores_before", 0) > 0.25:
        lines.append("WARNING: %.2f cores were busy before the run started; figures are "
                     "unreliable." % doc["busy_cores_before"])
    lines += ["", "| measure | gateway | direct to backend | gateway / direct | target | met |",
              "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| %s |" % " | ".join(cells) for cells in rows]
    by_scenario = ", ".join(
        "%s %d/%s" % (name, entry["gateway"]["errors"],
                      entry["direct"]["errors"] if "direct" in entry else "–")
        for name, entry in r.items() if isinstance(entry, dict) and "gateway" in entry)
    reuse = ", ".join("%s %.2f" % (name, r[name]["gateway"]["upstream_connections_per_request"])
                      for name in ("chat_c1", "chat_c16", "stream200_c1", "stream200_c16",
                                   "responses_c1", "responses_c16", "resp_stream200_c1",
                                   "resp_stream200_c16") if name in r)
    if "responses_c1" in r:
        lines += ["", "Responses rows: the chat request as `instructions` + `input` to "
                  "/v1/responses, stored (`store` left at its default, true; store: %s); "
                  "a stream's first event is its first `response.output_text.delta`, its end "
                  "`response.completed`." % doc.get("responses_store", "default")]
    lines += ["", _headroom(r), "", _other_load(r), "",
              "New upstream connections per request (0: all reused, 1: none): %s." % reuse, "",
              "Errors by scenario (gateway/direct): %s." % by_scenario]
    return "\n".join(lines)


def other_load(results: Dict[str, Any]) -> Dict[str, float]:
    """Return the cores used by other work on the machine during each load run."""
    return {"%s/%s" % (name, side): entry[side]["cpu"]["other_cores"]
            for name, entry in results.items() if isinstance(entry, dict) and "gateway" in entry
            for side in ("gateway", "direct") if side in entry}


def _other_load(r: Dict[str, Any]) -> str:
    loads = other_load(r)
    worst = max(loads.values())
    disturbed = sorted(name for name, cores in loads.items() if cores > OTHER_LOAD_LIMIT)
    if not disturbed:
        return ("Other work on the machine used at most %.2f cores during any run."
                % worst)
    return ("**WARNING: other work on the machine used more than %.2f cores during %s "
            "(at most %.2f); those figures are skewed: run again on a quiet machine.**"
            % (OTHER_LOAD_LIMIT, ", ".join(disturbed), worst))


def _headroom(r: Dict[str, Any]) -> str:
    """Return the evidence that neither the backend nor the clients limited the gateway."""
    busiest = max((entry["gateway"]["cpu"]["backend"]["cpu_s"] / entry["gateway"]["seconds"])
                  for name, entry in r.items()
                  if name.startswith(("chat_", "stream", "responses_", "resp_stream")))
    client = max(entry[side]["client_cpu_share"] for name, entry in r.items()
                 if name.startswith(("stream", "scaling", "paced", "resp_stream"))
                 for side in ("gateway", "direct") if side in entry)
    c16, s16 = r["chat_c16"], r["stream200_c16"]
    return ("Headroom: direct to the backend the same load tools reach %s× the gateway's chat "
            "requests/s and %s× its streams/s (16 conn); while the gateway ran, the backend "
            "used at most %.0f%% of one core, and no stream-client process more than %.0f%%."
            % (_n(c16["direct"]["rps"] / c16["gateway"]["rps"]),
               _n(s16["direct"]["streams_per_s"] / s16["gateway"]["streams_per_s"]),
               busiest * 100, client * 100))
