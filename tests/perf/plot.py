"""A picture of a benchmark run: ``python tests/perf/plot.py build/perf/bench.json -o build/perf/bench.svg``.

Two rows of small panels, one column per scenario (chat and Responses,
plain and streamed), each against concurrency (1 and 16 connections):
the p50 latency the gateway adds (gateway minus direct to the backend; for
a stream, to its first event) and the CPU per request, gateway beside the
backend alone. Dashed marks are the targets of ``report.py``.

Needs matplotlib (``pip install -e '.[bench]'``); drawn with the Agg backend.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from report import cpu_ms

#: (result prefix, panel title, latency key, latency label).
SCENARIOS = [
    ("chat", "chat completions", "p50_ms", "response"),
    ("stream200", "chat, 200-chunk stream", "first_p50_ms", "first chunk"),
    ("responses", "Responses API", "p50_ms", "response"),
    ("resp_stream200", "Responses, 200-chunk stream", "first_p50_ms", "first text delta"),
]
CONNS = (1, 16)
#: Target names of report.py, by (result prefix, measure).
TARGETS = {
    ("chat", "latency"): "added_p50", ("stream200", "latency"): "added_first_p50",
    ("chat", "cpu"): "cpu_chat_c%d", ("stream200", "cpu"): "cpu_stream_c%d",
    ("responses", "cpu"): "cpu_responses_c%d", ("resp_stream200", "cpu"): "cpu_resp_stream_c%d",
}
GATEWAY, DIRECT, TARGET = "#1f6fb4", "#b0b0b0", "#c0392b"
MISSING_MATPLOTLIB = ("note: no plot: matplotlib is not installed "
                      "(pip install -e '.[bench]' installs the bench extra)")


def _limit(doc: Dict[str, Any], prefix: str, measure: str, conns: int) -> Optional[float]:
    """Return the target limit for one bar, or ``None`` where there is none."""
    name = TARGETS.get((prefix, measure))
    if name is None:
        return None
    name = name % conns if "%d" in name else (name if conns == 1 else "")
    return next((t["limit"] for t in doc.get("targets", []) if t["name"] == name), None)


def figures(doc: Dict[str, Any]) -> List[Tuple[str, str, List[Tuple[int, float, float, float]]]]:
    """Return, per scenario of the run: its prefix, title and (conns, added ms, gateway CPU ms, backend CPU ms)."""
    results = doc["results"]
    out = []
    for prefix, title, key, _ in SCENARIOS:
        points = []
        for conns in CONNS:
            entry = results.get("%s_c%d" % (prefix, conns))
            if entry is None:
                continue
            gateway, direct = entry["gateway"], entry["direct"]
            points.append((conns, gateway[key] - direct[key], cpu_ms(gateway),
                           cpu_ms(direct, "backend")))
        if points:
            out.append((prefix, title, points))
    return out


def plot(doc: Dict[str, Any], out: Path) -> Path:
    """Write the picture of ``doc`` (a bench JSON document) to ``out``; return ``out``.

    :raises ImportError: without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    # Text stays text (small, searchable); no date, so a re-run diffs cleanly.
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    panels = figures(doc)
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels) + 0.6, 6.6),
                             squeeze=False, sharey="row")
    labels = {prefix: what for prefix, _, _, what in SCENARIOS}
    for col, (prefix, title, points) in enumerate(panels):
        top, bottom = axes[0][col], axes[1][col]
        x = list(range(len(points)))
        ticks = ["%d conn" % conns for conns, _, _, _ in points]
        added = [p[1] for p in points]
        bars = top.bar(x, added, 0.36, color=GATEWAY, label="gateway")
        top.bar_label(bars, ["+%.1f" % v if v < 10 else "+%.0f" % v for v in added],
                      padding=2, fontsize=8)
        top.set_title(title, fontsize=10)
        top.text(0.5, 0.97, "p50 to %s" % labels[prefix], transform=top.transAxes,
                 ha="center", va="top", fontsize=8, color="#555555")
        width = 0.36
        gw = bottom.bar([i - width / 2 for i in x], [p[2] for p in points], width,
                        color=GATEWAY, label="gateway")
        direct = bottom.bar([i + width / 2 for i in x], [p[3] for p in points], width,
                            color=DIRECT, label="direct to the backend")
        for group in (gw, direct):
            bottom.bar_label(group, ["%.2f" % b.get_height() for b in group], padding=2,
                             fontsize=7)
        for i, (conns, _, _, _) in enumerate(points):
            for axis, measure, centre, half in ((top, "latency", i, 0.32),
                                                (bottom, "cpu", i - width / 2, width / 2 + 0.04)):
                limit = _limit(doc, prefix, measure, conns)
                if limit is not None:
                    axis.hlines(limit, centre - half, centre + half, colors=TARGET,
                                linestyles="dashed", linewidth=1.3, label="target")
        for axis in (top, bottom):
            axis.set_xticks(x)
            axis.set_xticklabels(ticks)
            axis.set_xlim(-0.6, len(points) - 0.4)
            axis.grid(axis="y", alpha=0.3)
            axis.set_axisbelow(True)
            axis.margins(y=0.18)
    axes[0][0].set_ylabel("added latency, p50 (ms)\ngateway minus direct")
    axes[1][0].set_ylabel("CPU per request or stream (ms)\ngateway: all gunicorn processes")
    for row in axes:
        row[0].set_ylim(bottom=0)
    handles = {}  # type: Dict[str, Any]
    for axis in (axes[0][0], axes[1][0]):
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center",
               ncol=len(handles), fontsize=8, frameon=False)
    m = doc.get("machine", {})
    fig.suptitle("ollama-gateway vs. a fake Ollama, %s: %s cores, %s gunicorn workers (%s), "
                 "%g s runs, commit %s" % (m.get("date", "?"), m.get("cores", "?"),
                                           doc.get("workers", "?"),
                                           doc.get("worker_class", "gthread"),
                                           doc.get("duration_s", 0), m.get("commit") or "?"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lstrip(".") or "svg"
    fig.savefig(str(out), format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench_json", type=Path, help="a bench.py result, e.g. build/perf/bench.json")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="the picture (.svg, or .png); default: beside the JSON, .svg")
    args = parser.parse_args(argv)
    out = args.out or args.bench_json.with_suffix(".svg")
    try:
        plot(json.loads(args.bench_json.read_text()), out)
    except ImportError:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
        return 2
    print("plot: %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
