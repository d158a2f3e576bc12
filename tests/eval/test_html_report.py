"""report.html is a real page: tables as tables, side-by-side result lists, charts, the training configuration
collapsed, and no ``<pre>`` holding the report. Parsed with the standard library's HTML parser and rendered in
headless Chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from searchtune.eval.metrics import evaluate
from searchtune.eval.report import ExampleQuery, ReportInput, write_report

QRELS = {str(q): {f"d{q}": 1, f"e{q}": 1} for q in range(40)}
BASE = {str(q): {"x": 3.0, f"d{q}": 2.0, "y": 1.0, f"e{q}": 0.5} for q in range(40)}
BETTER = {str(q): ({f"d{q}": 3.0, f"e{q}": 2.0, "x": 1.0} if q % 4 else {"x": 3.0, "y": 2.0, f"d{q}": 1.0})
          for q in range(40)}
TRAINING = {"task": "embed", "base_model": "all-MiniLM-L6-v2", "train_seconds": 512.3,
            "config": {"loss": "cached-mnrl", "learning_rate": 3e-05, "batch_size": 32, "max_length": 256},
            "dev_final": {"dev_ndcg@10": 0.71}, "hardware": {"cpu_count": 2, "platform": "Linux"}}


class Page(HTMLParser):
    """Tags, their nesting and text: enough to check structure without a browser."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict, tuple[str, ...]]] = []
        self.text_in: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in ("img", "meta", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        for tag in set(self.stack):
            self.text_in.setdefault(tag, []).append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _, _ in self.tags if t == tag)


def _report(tmp_path: Path, curve: list[tuple[float, float]]) -> dict[str, Path]:
    data = ReportInput(
        title="BM25 vs fine-tuned", dataset="synthetic", split="test",
        systems={"BM25": evaluate(QRELS, BASE), "fine-tuned": evaluate(QRELS, BETTER)},
        examples=[ExampleQuery("1", "a <query>", [("x", "X title", 0), ("d1", "D title", 1)],
                               [("d1", "D title", 1), ("x", "X title", 0)])],
        training_curve=curve, training_info=TRAINING, latencies_ms=[float(i % 17 + 3) for i in range(100)],
        stage_seconds={"index": 1.5, "train": 512.0}, commands=["searchtune eval ..."],
        notes=["no search fell back to `BM25` order"])
    return write_report(data, tmp_path)


def _page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def test_report_page_structure(tmp_path: Path) -> None:
    paths = _report(tmp_path, [(10, 0.41), (20, 0.52), (30, 0.55)])
    page = _page(paths["html"])
    assert page.count("table") >= 3  # metrics, training configuration, stages
    metric_cells = " ".join(page.text_in["td"])
    assert "0.8266" in metric_cells and "(+0.1757)" in metric_cells  # the fine-tuned row shows its gain
    pre_text = " ".join(page.text_in.get("pre", []))
    assert "NDCG@10" not in pre_text and "| system |" not in pre_text, "the report must not sit inside a <pre>"
    assert page.count("pre") <= 1 and "searchtune eval" in pre_text  # only the commands are preformatted
    # side-by-side result lists: two ordered lists in one example, the relevant hit marked
    lists = [t for t in page.tags if t[0] == "ol"]
    assert len(lists) == 2 and all("div" in parents for _, _, parents in lists)
    assert any(t == "li" and a.get("class") == "relevant" for t, a, _ in page.tags)
    assert "a <query>" in " ".join(page.text_in["h3"])  # escaped text, not markup
    # the training configuration is collapsed, not filling the page
    config_rows = [t for t in page.tags if t[0] == "th" and "details" in t[2]]
    assert len(config_rows) >= 8
    assert "cached-mnrl" in " ".join(page.text_in["details"])
    images = [a["alt"] for t, a, _ in page.tags if t == "img"]
    assert len(images) == 4 and any("training" in alt for alt in images)
    assert "<code>BM25</code>" in paths["html"].read_text()  # notes are markdown


def test_one_dev_point_is_a_sentence_not_a_chart(tmp_path: Path) -> None:
    paths = _report(tmp_path, [(40, 0.61)])
    page = _page(paths["html"])
    images = [a["alt"] for t, a, _ in page.tags if t == "img"]
    assert not any("training" in alt.lower() for alt in images)
    assert "One dev evaluation, at step 40: NDCG@10 0.6100" in " ".join(" ".join(page.text_in["p"]).split())
    assert "chart_training" not in paths
    assert json.loads(paths["json"].read_text())["systems"]["fine-tuned"]["num_queries"] == 40


def test_templates_ship_with_the_package() -> None:
    """setuptools must install the templates (package data), or the page cannot render after `pip install`."""
    import tomllib
    from importlib.resources import files

    assert files("searchtune.eval").joinpath("templates", "report.html.j2").is_file()
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "templates/*.j2" in project["tool"]["setuptools"]["package-data"]["searchtune.eval"]


def test_chromium_renders_tables_and_charts(tmp_path: Path, screenshot, colour_count) -> None:
    paths = _report(tmp_path, [(10, 0.41), (20, 0.52), (30, 0.55)])
    shot = screenshot(paths["html"], tmp_path / "page.png", height=2200)
    assert colour_count(shot, (38, 70, 83), tolerance=12) > 40, "no table header (#264653) visible"
    assert colour_count(shot, (31, 119, 180)) > 50, "no blue bars: metrics chart missing"
    assert colour_count(shot, (42, 157, 143)) > 50, "no teal bars: win/loss chart missing"
