"""The report as a real HTML page: jinja2 templates (``eval/templates``, shipped as package data) with tables as
tables, side-by-side result lists, embedded charts, and the training configuration collapsed.

Why templates and not string building: the page used to be the markdown text inside a ``<pre>``; templates keep
markup, style and data apart, and the same ``base.html.j2`` / ``macros.html.j2`` serve other pages (the workbench).
Notes may hold markdown (``code``, links): they go through markdown-it, with raw HTML disabled.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

#: Captions under each chart, by the chart names :mod:`searchtune.eval.report` draws.
CAPTIONS = {"metrics": "Relevance by system (higher is better)",
            "winloss": "Per-query change in NDCG@10 (green: better than the baseline)",
            "training": "Dev NDCG@10 during training",
            "latency": "Search latency through the gateway"}


def environment(*packages: str) -> Environment:
    """The template environment every searchtune page uses (autoescaped, strict about missing values). ``packages``
    (e.g. ``"searchtune.workbench"``) add their own ``templates`` folders in front of the shared layout and macros."""
    loaders = [PackageLoader(package, "templates") for package in (*packages, "searchtune.eval")]
    return Environment(loader=ChoiceLoader(loaders),
                       autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def markdown_html(text: str) -> Markup:
    """Markdown to safe HTML (raw HTML in the text is escaped, not passed through)."""
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``{"config": {"loss": "mnrl"}}`` -> ``[("config.loss", "mnrl")]``, for a key/value table."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += flatten(value, name + ".")
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        elif isinstance(value, (list, tuple)):
            rows.append((name, ", ".join(map(str, value)) or "-"))
        else:
            rows.append((name, "-" if value is None or value == {} else str(value)))
    return rows


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def render_report(data, summary: dict, charts: Mapping[str, Path], metrics: tuple[str, ...]) -> str:
    """The quickstart/eval report page for a :class:`searchtune.eval.report.ReportInput`."""
    names = list(data.systems)
    baseline = data.systems[names[0]]
    baseline_view = {"name": names[0], "aggregate": baseline.aggregate}
    curve = list(data.training_curve)
    notes = "\n".join(f"- {note}" for note in data.notes)
    return environment().get_template("report.html.j2").render(
        title=data.title, dataset=data.dataset, split=data.split, systems=data.systems, metrics=metrics,
        baseline=baseline_view, system_name=names[1], test=summary["paired_test"], latency=summary["latency_ms"],
        charts=[(name, CAPTIONS.get(name, name), _data_uri(path)) for name, path in charts.items()],
        examples=data.examples, single_dev_point=curve[0] if len(curve) == 1 else None,
        training_rows=flatten(data.training_info), stage_seconds=data.stage_seconds, commands=data.commands,
        notes_html=markdown_html(notes) if notes else "",
        deployment_html=markdown_html("\n".join(f"- {line}" for line in data.deployment)) if data.deployment else "")
