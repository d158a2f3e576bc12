"""The report a search engineer shows their team: report.md, a self-contained report.html with PNG charts, and
report.json with every number (so tests and other tools can check them).

Charts are drawn with matplotlib's Agg backend (no display needed) and embedded as base64 PNGs in the HTML page,
which :mod:`searchtune.eval.html_report` renders from jinja2 templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from searchtune.eval.html_report import render_report  # noqa: E402
from searchtune.eval.metrics import EvalResult  # noqa: E402
from searchtune.eval.significance import paired_test  # noqa: E402
from searchtune.storage import atomic_write  # noqa: E402

METRICS_SHOWN = ("NDCG@10", "MRR@10", "Recall@100")


@dataclass
class ExampleQuery:
    query_id: str
    text: str
    baseline_top: list[tuple[str, str, int]]  # (doc id, title, relevance grade)
    system_top: list[tuple[str, str, int]]


@dataclass
class ReportInput:
    title: str
    dataset: str
    split: str
    systems: dict[str, EvalResult]  # first = baseline, second = the fine-tuned system
    examples: list[ExampleQuery] = field(default_factory=list)
    training_curve: list[tuple[float, float]] = field(default_factory=list)  # (step, dev NDCG@10)
    training_info: dict = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown first (e.g. a time budget cut training)
    deployment: list[str] = field(default_factory=list)  # which stack won the validation, by how much, how sure
    deployment_info: dict = field(default_factory=dict)  # the same as numbers (eval/selection.Selection)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _charts(data: ReportInput, out_dir: Path) -> dict[str, Path]:
    names = list(data.systems)
    base, system = data.systems[names[0]], data.systems[names[1]]
    charts: dict[str, Path] = {}

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [data.systems[name].aggregate[m] for m in METRICS_SHOWN]
        bars = ax.bar([x + i * width for x in range(len(METRICS_SHOWN))], values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(METRICS_SHOWN))], METRICS_SHOWN)
    ax.set_ylim(0, 1)
    ax.set_title("Relevance by system")
    ax.legend(fontsize=8)
    charts["metrics"] = _save(fig, out_dir / "metrics.png")

    queries = sorted(set(base.per_query) & set(system.per_query))
    deltas = sorted((system.per_query[q]["NDCG@10"] - base.per_query[q]["NDCG@10"] for q in queries), reverse=True)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(deltas)), deltas, width=1.0, color=["#2a9d8f" if d > 0 else "#e76f51" for d in deltas])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("queries, sorted by change")
    ax.set_ylabel("Δ NDCG@10")
    ax.set_title(f"Per-query wins/losses: {names[1]} vs {names[0]}")
    charts["winloss"] = _save(fig, out_dir / "winloss.png")

    if len(data.training_curve) >= 2:  # one dot is no curve: the page states the single value instead
        fig, ax = plt.subplots(figsize=(7, 3.0))
        steps, values = zip(*data.training_curve)
        ax.plot(steps, values, marker="o")
        ax.set_xlabel("training step")
        ax.set_ylabel("dev NDCG@10")
        ax.set_title("Training curve (dev split)")
        charts["training"] = _save(fig, out_dir / "training.png")

    if data.latencies_ms:
        fig, ax = plt.subplots(figsize=(7, 3.0))
        ax.hist(data.latencies_ms, bins=30, color="#264653")
        ax.set_xlabel("search latency through the gateway (ms)")
        ax.set_ylabel("requests")
        ax.set_title("Search latency through the gateway pipeline")
        charts["latency"] = _save(fig, out_dir / "latency.png")
    return charts


def build_summary(data: ReportInput) -> dict:
    names = list(data.systems)
    test = paired_test(data.systems[names[0]], data.systems[names[1]])
    return {
        "title": data.title, "dataset": data.dataset, "split": data.split,
        "systems": {name: {"num_queries": r.num_queries, **r.aggregate} for name, r in data.systems.items()},
        "paired_test": test.__dict__ | {"significant": test.significant},
        "latency_ms": {"count": len(data.latencies_ms), "p50": _percentile(data.latencies_ms, 50),
                       "p95": _percentile(data.latencies_ms, 95), "p99": _percentile(data.latencies_ms, 99)},
        "training": data.training_info, "stage_seconds": data.stage_seconds, "commands": data.commands,
        "warnings": data.warnings, "deployment": data.deployment_info,
    }


def _markdown(data: ReportInput, summary: dict) -> str:
    names = list(data.systems)
    lines = [f"# {data.title}", "", *[f"> **Warning:** {w}\n" for w in data.warnings],
             f"Dataset **{data.dataset}**, split **{data.split}**.", "",
             "| system | queries | " + " | ".join(METRICS_SHOWN) + " |", "|---|---|" + "---|" * len(METRICS_SHOWN)]
    for name, result in data.systems.items():
        lines.append(f"| {name} | {result.num_queries} | " + " | ".join(f"{result.aggregate[m]:.4f}" for m in METRICS_SHOWN) + " |")
    t = summary["paired_test"]
    lines += ["", f"{names[1]} vs {names[0]}: ΔNDCG@10 = {t['delta']:+.4f}; wins/losses/ties = "
                  f"{t['wins']}/{t['losses']}/{t['ties']}; paired t-test p = {t['t_pvalue']:.3g}, Wilcoxon p = "
                  f"{t['wilcoxon_pvalue']:.3g} ({'significant' if t['significant'] else 'not significant'} at 0.05).", ""]
    if data.deployment:
        lines += ["## Deployed stack (chosen on the judged training queries, never on test)", "",
                  *[f"- {line}" for line in data.deployment], ""]
    lat = summary["latency_ms"]
    if lat["count"]:
        lines += [f"Search latency through the gateway pipeline over {lat['count']} queries: p50 {lat['p50']:.1f} ms, "
                  f"p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms.", ""]
    if data.training_info:
        lines += ["## Training", "", "```json", json.dumps(data.training_info, indent=2), "```", ""]
    if data.examples:
        lines += ["## Example queries (top 5; ✓ = judged relevant)", ""]
        for ex in data.examples:
            lines += [f"### {ex.query_id}: {ex.text}", "", f"| # | {names[0]} | {names[1]} |", "|---|---|---|"]
            for i in range(max(len(ex.baseline_top), len(ex.system_top))):
                cells = []
                for top in (ex.baseline_top, ex.system_top):
                    if i < len(top):
                        did, title, grade = top[i]
                        cells.append(f"{'✓ ' if grade > 0 else ''}{did}: {title[:70]}".replace("|", "/"))
                    else:
                        cells.append("")
                lines.append(f"| {i + 1} | {cells[0]} | {cells[1]} |")
            lines.append("")
    if data.stage_seconds:
        lines += ["## Wall time per stage", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in data.stage_seconds.items()]
        lines.append("")
    if data.commands:
        lines += ["## Reproduce", "", "```bash", *data.commands, "```", ""]
    lines += [f"- {note}" for note in data.notes]
    return "\n".join(lines) + "\n"


def write_report(data: ReportInput, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html, report.json and charts/*.png under ``out_dir``; each file atomically."""
    if len(data.systems) < 2:
        raise ValueError("a report compares at least two systems (baseline first)")
    out_dir = Path(out_dir)
    chart_dir = out_dir / "charts"
    chart_dir.mkdir(parents=True, exist_ok=True)
    charts = _charts(data, chart_dir)
    summary = build_summary(data)
    markdown_text = _markdown(data, summary)
    paths = {"md": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "report.json"}
    contents = {"md": markdown_text, "html": render_report(data, summary, charts, METRICS_SHOWN),
                "json": json.dumps(summary | {"per_query": {n: r.per_query for n, r in data.systems.items()}}, indent=2)}
    for key, path in paths.items():
        atomic_write(path, contents[key])
    return paths | {f"chart_{k}": v for k, v in charts.items()}
