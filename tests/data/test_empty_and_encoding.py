"""Issue 12 item 9: empty corpus/queries/qrels fail validation and staging; invalid UTF-8 names file and line.

Both ran clean before (an empty corpus validated with exit 0 and was staged as complete with 0 documents; a bad
byte ended in a UnicodeDecodeError traceback naming no file). The real CLI runs as a subprocess, so the check
covers what users see: one error line, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from searchtune.data.validate import validate_path


def _beir(root: Path, corpus: bytes | None = None, queries: bytes | None = None, qrels: bytes | None = None) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_bytes(corpus if corpus is not None else
                                        b'{"_id": "d1", "title": "t", "text": "alpha"}\n{"_id": "d2", "text": "b"}\n')
    (root / "queries.jsonl").write_bytes(queries if queries is not None else b'{"_id": "q1", "text": "first"}\n')
    (root / "qrels" / "test.tsv").write_bytes(qrels if qrels is not None else
                                              b"query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCHTUNE_STORE": str(home / "store"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "searchtune.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("part, expected", [
    ("corpus", "corpus.jsonl: no documents"),
    ("queries", "queries.jsonl: no queries"),
    ("qrels", "no relevance judgments"),
])
def test_empty_parts_fail_validation_and_staging(tmp_path: Path, part: str, expected: str) -> None:
    empty = {"qrels": b"query-id\tcorpus-id\tscore\n"}.get(part, b"")
    ds = _beir(tmp_path / "ds", **{part: empty})
    report = validate_path(ds)
    assert any(expected in e for e in report.errors), report.errors
    result = _cli("data", "validate", str(ds), home=tmp_path)
    assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr
    staged = _cli("data", "stage", str(ds), str(tmp_path / "staged"), home=tmp_path)
    assert staged.returncode == 1, staged.stdout
    assert "refusing to stage invalid data" in staged.stderr and expected in staged.stderr
    assert "Traceback" not in staged.stderr
    assert not (tmp_path / "staged" / "manifest.json").exists()


def test_empty_examples_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "triplets.jsonl"
    path.write_bytes(b"")
    report = validate_path(path)
    assert report.errors == [f"{path}: no records (the file is empty)"]


@pytest.mark.parametrize("part", ["corpus", "queries", "qrels"])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, part: str) -> None:
    bad = {"corpus": b'{"_id": "d1", "text": "alpha"}\n{"_id": "d2", "text": "caf\xe9"}\n',
           "queries": b'{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "\xff"}\n',
           "qrels": b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq\xc3(\td1\t1\n"}[part]
    ds = _beir(tmp_path / "ds", **{part: bad})
    file = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "qrels": "qrels/test.tsv"}[part]
    report = validate_path(ds)
    assert len(report.errors) == 1 and f"{file}:" in report.errors[0]
    line = 3 if part == "qrels" else 2
    assert f"{ds / file}:{line}: not valid UTF-8" in report.errors[0]
    result = _cli("data", "validate", str(ds), home=tmp_path)
    assert result.returncode == 1 and "not valid UTF-8" in result.stderr
    assert "Traceback" not in result.stderr and "UnicodeDecodeError" not in result.stderr
    staged = _cli("data", "stage", str(ds), str(tmp_path / "staged"), home=tmp_path)
    assert staged.returncode == 1 and f"{file}:{line}: not valid UTF-8" in staged.stderr


def test_valid_data_still_stages(tmp_path: Path) -> None:
    ds = _beir(tmp_path / "ds")
    staged = _cli("data", "stage", str(ds), str(tmp_path / "staged"), home=tmp_path)
    assert staged.returncode == 0, staged.stderr
    manifest = json.loads((tmp_path / "staged" / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 2
