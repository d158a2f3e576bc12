"""Judgment lists on a real local store: versions, TREC qrels + JSONL with rater and time, and concurrent writers
in separate processes (the lock, re-read, merge, atomic write) losing nothing."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from searchtune.workbench.judgments import Grade, JudgmentError, JudgmentList, list_names, parse_ref


def _grade(q: str, d: str, g: int, rater: str = "ana") -> Grade:
    return Grade(q, f"text of {q}", d, g, rater)


def test_versions_files_and_last_grade_wins(tmp_path: Path) -> None:
    judgments = JudgmentList("scifact-judged", str(tmp_path))
    judgments.create("graded", dataset="/data/scifact", index="scifact")
    assert judgments.record([_grade("1", "d1", 2), _grade("1", "d2", 0)]) == 2
    assert judgments.record([_grade("1", "d1", 3, rater="bo"), _grade("7", "d9", 1)]) == 4
    assert judgments.qrels() == {"1": {"d1": 3, "d2": 0}, "7": {"d9": 1}}
    assert judgments.qrels(2) == {"1": {"d1": 2, "d2": 0}}  # an old version is rebuilt exactly
    qrels_file = tmp_path / "judgments" / "scifact-judged" / "qrels.txt"
    assert qrels_file.read_text() == "1 0 d1 3\n1 0 d2 0\n7 0 d9 1\n"
    events = [json.loads(line) for line in (qrels_file.parent / "judgments.jsonl").read_text().splitlines()]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert events[2]["rater"] == "bo" and events[2]["time"].endswith("+00:00") and events[2]["query"] == "text of 1"
    meta = judgments.meta()
    assert meta["version"] == 4 and meta["dataset"] == "/data/scifact" and len(meta["qrels_sha256"]) == 64
    assert list_names(str(tmp_path)) == ["scifact-judged"]
    assert not list(qrels_file.parent.glob(".*.tmp")) and not (qrels_file.parent / ".lock").exists()


def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    judgments = JudgmentList("binary-list", str(tmp_path))
    judgments.create("binary")
    judgments.record([_grade("1", "d1", 1)])
    with pytest.raises(JudgmentError, match="outside the list's binary scale"):
        judgments.record([_grade("1", "d2", 0), _grade("1", "d3", 3)])
    assert judgments.qrels() == {"1": {"d1": 1}}  # the good grade in the refused batch was not half-written
    with pytest.raises(JudgmentError, match="versions 0..1, not 5"):
        judgments.qrels(5)
    with pytest.raises(JudgmentError, match="invalid judgment list name"):
        parse_ref("../etc")
    with pytest.raises(JudgmentError, match="must be a number"):
        parse_ref("list@latest-ish")
    with pytest.raises(JudgmentError, match="no judgment list named 'missing'"):
        JudgmentList("missing", str(tmp_path)).record([_grade("1", "d1", 1)])
    with pytest.raises(JudgmentError, match="scale must be one of"):
        JudgmentList("other", str(tmp_path)).create("stars")


def _writer(store: str, rater: str, count: int) -> None:
    judgments = JudgmentList("shared", store)
    for i in range(count):
        judgments.record([Grade(f"q{i % 5}", "", f"{rater}-doc{i}", i % 4, rater)])


def test_two_processes_grading_one_list_lose_nothing(tmp_path: Path) -> None:
    JudgmentList("shared", str(tmp_path)).create("graded")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), rater, 25)) for rater in ("ana", "bo")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    judgments = JudgmentList("shared", str(tmp_path))
    events = judgments.events()
    assert sorted(e["version"] for e in events) == list(range(1, 51))  # every write got its own version
    graded = {d for docs in judgments.qrels().values() for d in docs}
    assert graded == {f"{r}-doc{i}" for r in ("ana", "bo") for i in range(25)}
    assert judgments.meta()["version"] == 50
    assert len((tmp_path / "judgments" / "shared" / "qrels.txt").read_text().splitlines()) == 50
