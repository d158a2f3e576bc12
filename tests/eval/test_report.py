"""The report: numbers in report.json match the inputs, and a real headless Chromium renders the charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchtune.eval.metrics import evaluate
from searchtune.eval.report import ExampleQuery, ReportInput, write_report

QRELS = {str(q): {f"d{q}": 1, f"e{q}": 1} for q in range(40)}
BASE = {str(q): {"x": 3.0, f"d{q}": 2.0, "y": 1.0, f"e{q}": 0.5} for q in range(40)}
BETTER = {str(q): ({f"d{q}": 3.0, f"e{q}": 2.0, "x": 1.0} if q % 4 else {"x": 3.0, "y": 2.0, f"d{q}": 1.0}) for q in range(40)}


def _report(tmp_path: Path, systems: dict | None = None) -> dict[str, Path]:
    data = ReportInput(
        title="BM25 vs fine-tuned", dataset="synthetic", split="test",
        systems=systems or {"BM25": evaluate(QRELS, BASE), "fine-tuned": evaluate(QRELS, BETTER)},
        examples=[ExampleQuery("1", "a query", [("x", "X title", 0)], [("d1", "D title", 1)])],
        training_curve=[(10, 0.41), (20, 0.52), (30, 0.55)], latencies_ms=[float(i % 17 + 3) for i in range(100)],
        stage_seconds={"index": 1.5}, commands=["searchtune eval ..."])
    return write_report(data, tmp_path)


def test_report_numbers_and_significance(tmp_path: Path) -> None:
    paths = _report(tmp_path)
    summary = json.loads(paths["json"].read_text())
    assert summary["systems"]["BM25"]["NDCG@10"] == pytest.approx(evaluate(QRELS, BASE).aggregate["NDCG@10"])
    test = summary["paired_test"]
    assert test["wins"] == 30 and test["losses"] == 10
    assert test["delta"] > 0 and test["significant"]
    assert summary["latency_ms"]["p50"] == pytest.approx(11.0, abs=1.0)
    md = paths["md"].read_text()
    assert "| fine-tuned | 40 |" in md and "✓ d1" in md
    assert not list(tmp_path.glob("*.tmp"))


def test_warnings_come_first(tmp_path: Path) -> None:
    data = ReportInput(title="t", dataset="synthetic", split="test",
                       systems={"BM25": evaluate(QRELS, BASE), "fine-tuned": evaluate(QRELS, BETTER)},
                       warnings=["the time budget of 60s cut training at step 12 of 52"])
    paths = write_report(data, tmp_path)
    lines = paths["md"].read_text().splitlines()
    assert lines[2] == "> **Warning:** the time budget of 60s cut training at step 12 of 52"
    assert json.loads(paths["json"].read_text())["warnings"] == data.warnings
    assert "Warning:" not in _report(tmp_path / "plain")["md"].read_text()


def test_report_needs_two_systems(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least two systems"):
        _report(tmp_path, systems={"BM25": evaluate(QRELS, BASE)})


def test_headless_chromium_screenshot_shows_charts(tmp_path: Path, screenshot, colour_count) -> None:
    paths = _report(tmp_path)
    shot = screenshot(paths["html"], tmp_path / "shot.png")
    # matplotlib's first two series colours in the metrics chart, and the win (teal) bars
    assert colour_count(shot, (31, 119, 180)) > 50, "no blue bars visible: metrics chart missing"
    assert colour_count(shot, (255, 127, 14)) > 50, "no orange bars visible: metrics chart missing"
    assert colour_count(shot, (42, 157, 143)) > 50, "no teal win bars visible: win/loss chart missing"
