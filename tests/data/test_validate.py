"""`searchtune data validate`: every shared collection runs clean (real defects become warnings); broken data fails
with file/line/field; statistics count what they say they count."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data.validate import validate_path

runner = CliRunner()


def test_validate_every_shared_collection_from_the_cli(datasets_dir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "reports.json"
    result = runner.invoke(app, ["data", "validate", str(datasets_dir), "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    reports = {Path(r["path"]).relative_to(datasets_dir).as_posix(): r
               for r in json.loads(report_path.read_text())["reports"]}
    assert set(reports) == {"scifact/beir_format_derived", "cranfield", "npl_vaswani"}
    assert all(r["ok"] and not r["errors"] for r in reports.values())
    scifact = reports["scifact/beir_format_derived"]["stats"]
    assert scifact["documents"] == 5183 and scifact["splits"]["train"]["judged_pairs"] == 919
    assert scifact["splits"]["test"]["label_histogram"] == {"1": 339}
    # real defects of the collections, reported as warnings
    assert scifact["split_leaks"] == 2  # two SciFact claims occur verbatim in both train and dev(test)
    cran = reports["cranfield"]
    assert any("471, 995" in w and "no text" in w for w in cran["warnings"])
    assert cran["stats"]["splits"]["test"]["label_histogram"] == {"0": 225, "1": 363, "2": 734, "3": 387, "4": 128}
    assert reports["npl_vaswani"]["stats"]["duplicate_documents"] == 16
    strict = runner.invoke(app, ["data", "validate", str(datasets_dir / "cranfield"), "--strict"])
    assert strict.exit_code == 1


def _beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "text": "alpha"}, {"_id": "d2", "text": "beta"}, {"_id": "d3", "text": "Beta"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}, {"_id": "q3", "text": "First"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td9\t1\nq2\td2\t0\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td1\t1\n")
    return root


def test_defects_are_counted(tmp_path: Path) -> None:
    report = validate_path(_beir(tmp_path / "ds"))
    assert report.ok, report.errors
    train = report.stats["splits"]["train"]
    assert train["missing_documents"] == 1 and train["queries_without_positive"] == 1
    assert train["label_histogram"] == {"0": 1, "1": 1, "2": 1}
    assert train["positives_per_query"]["max"] == 2
    assert report.stats["duplicate_documents"] == 1  # beta / Beta
    assert report.stats["split_leaks"] == 1  # "first" in train, "First" in test
    text = "\n".join(report.warnings)
    assert "d9" in text and "leak across splits" in text


def test_broken_dataset_fails_with_location(tmp_path: Path) -> None:
    root = _beir(tmp_path / "ds")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tx\n")
    result = runner.invoke(app, ["data", "validate", str(root)])
    assert result.exit_code == 1
    assert "train.tsv:2field'score':notanumber" in "".join(result.output.split())  # rich may wrap lines


def test_examples_files_statistics_and_errors(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in [
        {"query": "q1", "document": "a", "label": 0.9}, {"query": "q1", "document": "b", "label": 0.1},
        {"query": "q1", "document": "a", "label": 0.3}, {"query": "q2", "document": "c", "label": 0.0}]) + "\n")
    report = validate_path(pairs)
    assert report.ok and report.layout == "graded-pairs"
    assert report.stats["pairs"] == 4 and report.stats["queries"] == 2 and report.stats["duplicate_pairs"] == 1
    assert sum(report.stats["label_histogram"].values()) == 4
    assert any("different labels" in w for w in report.warnings)
    assert any("no pair with label > 0" in w for w in report.warnings)

    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text("\n".join(json.dumps(r) for r in [
        {"query": "q", "positive": "p", "negatives": ["n", "P "]}, {"query": "q", "positive": "p", "negatives": []},
        {"query": "q", "positive": 3, "negatives": []}]) + "\n")
    report = validate_path(triplets)
    assert not report.ok
    assert any("triplets.jsonl:3 field 'positive': must be a string" in e for e in report.errors)
    assert any("positive among the negatives" in e for e in report.errors)
    assert report.stats["invalid_records"] == 1 and report.stats["triplets"] == 2
    result = runner.invoke(app, ["data", "validate", str(triplets)])
    assert result.exit_code == 1
