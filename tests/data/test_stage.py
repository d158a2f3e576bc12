"""Staging datasets: to the local default store, and to ``s3://`` on a real S3-compatible server (moto's standalone
server, started by this module on 127.0.0.1 with a free port). The manifest is written last, readers verify
checksums and refuse folders without a manifest, and store failures come back as one clear line."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import Dataset, load_dataset
from searchtune.data.examples import Triplet, read_triplets, write_triplets
from searchtune.data.stage import (MANIFEST_NAME, StageError, list_staged, open_staged, read_manifest,
                                   sha256_file, stage_dataset, storage_options_for)
from searchtune.data.writers import write_beir

runner = CliRunner()


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEARCHTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEARCHTUNE_STORE", str(tmp_path / "store"))
    return tmp_path / "store"


@pytest.fixture()
def mini_src(scifact_mini: Dataset, tmp_path: Path) -> Path:
    return write_beir(scifact_mini, tmp_path / "src" / "scifact-mini")


# ---------------------------------------------------------------- local store


def test_local_default_store_round_trip(store: Path, mini_src: Path, scifact_mini: Dataset) -> None:
    manifest = stage_dataset(mini_src, "mini")
    target = store / "datasets" / "mini"
    assert sorted(f.path for f in manifest.files) == ["corpus.jsonl", "qrels/test.tsv", "qrels/train.tsv",
                                                      "queries.jsonl"]
    on_disk = json.loads((target / MANIFEST_NAME).read_text())
    assert on_disk["schema_version"] == 1 and on_disk["source"] == str(mini_src) and on_disk["layout"] == "beir"
    assert on_disk["counts"]["documents"] == len(scifact_mini.corpus)
    assert on_disk["counts"]["splits"]["train"]["queries"] == 24
    for entry in on_disk["files"]:
        assert entry["sha256"] == sha256_file(mini_src / entry["path"])
    path = open_staged("mini")
    assert path == target
    assert load_dataset(path).qrels == scifact_mini.qrels
    assert [uri for uri, _ in list_staged()] == [str(target)]

    with pytest.raises(StageError, match="already holds a staged dataset"):
        stage_dataset(mini_src, "mini")
    (mini_src / "qrels" / "test.tsv").unlink()  # a new version without the test split
    stage_dataset(mini_src, "mini", overwrite=True)
    assert not (target / "qrels" / "test.tsv").exists()  # files of the old version are cleaned up
    assert load_dataset(open_staged("mini")).splits == ["train"]


def test_local_reader_verifies_checksums_and_needs_a_manifest(store: Path, mini_src: Path) -> None:
    stage_dataset(mini_src, "mini")
    target = store / "datasets" / "mini"
    corpus = target / "corpus.jsonl"
    data = corpus.read_bytes()
    corpus.write_bytes(data.replace(b"the", b"teh", 1))
    with pytest.raises(StageError, match=r"corpus\.jsonl: sha256 .* does not match"):
        open_staged("mini")
    corpus.write_bytes(data)
    open_staged("mini")
    (target / MANIFEST_NAME).unlink()
    with pytest.raises(StageError, match="not a staged dataset: no manifest.json"):
        open_staged("mini")
    assert list_staged() == []


def test_single_examples_file_and_invalid_data(store: Path, tmp_path: Path) -> None:
    triplets = [Triplet("q", "p", ["n1", "n2"], query_id="1")]
    src = tmp_path / "mined.jsonl"
    write_triplets(triplets, src)
    manifest = stage_dataset(src, str(tmp_path / "elsewhere" / "mined"))
    assert manifest.layout == "triplets" and manifest.counts["triplets"] == 1
    path = open_staged(str(tmp_path / "elsewhere" / "mined"))
    assert path.name == "mined.jsonl" and read_triplets(path) == triplets

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p", "negatives": "n"}\n')
    with pytest.raises(StageError, match=r"refusing to stage invalid data: .*bad\.jsonl:1 field 'negatives'"):
        stage_dataset(bad, "bad")
    assert not (store / "datasets" / "bad").exists()


# ---------------------------------------------------------------- s3 via moto


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, store: Path, request: pytest.FixtureRequest):
    """Credentials the moto server accepts, no shared AWS config, and a fresh bucket per test."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SEARCHTUNE_S3_ENDPOINT_URL", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = "t-data-" + request.node.name.replace("_", "-")[:40].lower()
    client.create_bucket(Bucket=bucket)
    return client, bucket


def _keys(client, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_s3_round_trip_with_download_verification(s3, mini_src: Path, scifact_mini: Dataset, tmp_path: Path) -> None:
    client, bucket = s3
    uri = f"s3://{bucket}/datasets/mini"
    stage_dataset(mini_src, uri)
    assert _keys(client, bucket, "datasets/mini/") == [f"datasets/mini/{p}" for p in (
        "corpus.jsonl", "manifest.json", "qrels/test.tsv", "qrels/train.tsv", "queries.jsonl")]
    assert read_manifest(uri).counts["documents"] == len(scifact_mini.corpus)
    local = open_staged(uri, cache_dir=tmp_path / "cache")
    assert local.parent == tmp_path / "cache"
    assert load_dataset(local).qrels == scifact_mini.qrels
    assert open_staged(uri, cache_dir=tmp_path / "cache") == local  # cached and re-verified, not downloaded again

    client.put_object(Bucket=bucket, Key="datasets/mini/queries.jsonl", Body=b'{"_id": "1", "text": "changed"}\n')
    with pytest.raises(StageError, match=r"queries\.jsonl: size .* manifest says"):
        open_staged(uri, cache_dir=tmp_path / "fresh-cache")
    assert list((tmp_path / "fresh-cache").iterdir()) == []  # a failed download leaves nothing behind

    result = runner.invoke(app, ["data", "verify", uri, "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert str(local) in result.output


def test_s3_interrupted_upload_is_not_a_dataset(s3, mini_src: Path, tmp_path: Path) -> None:
    client, bucket = s3
    uri = f"s3://{bucket}/datasets/mini"
    uploaded: list[int] = []

    def die_after_two_files(n: int) -> None:
        uploaded.append(n)
        if len(uploaded) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two files

    with pytest.raises(KeyboardInterrupt):
        stage_dataset(mini_src, uri, on_progress=die_after_two_files)
    assert len(_keys(client, bucket, "datasets/mini/")) == 2  # data files are there...
    assert f"datasets/mini/{MANIFEST_NAME}" not in _keys(client, bucket, "datasets/mini/")  # ...the manifest is not
    assert list_staged(f"s3://{bucket}/datasets") == []
    with pytest.raises(StageError, match="not a staged dataset"):
        open_staged(uri, cache_dir=tmp_path / "cache")
    result = runner.invoke(app, ["data", "verify", uri])
    assert result.exit_code == 1 and "upload that did not finish" in " ".join(result.output.split())

    stage_dataset(mini_src, uri)  # a complete run makes it a dataset
    assert [u for u, _ in list_staged(f"s3://{bucket}/datasets")] == [uri]
    # re-staging over it and dying half-way hides the old copy instead of mixing old and new files
    uploaded.clear()
    with pytest.raises(KeyboardInterrupt):
        stage_dataset(mini_src, uri, overwrite=True, on_progress=die_after_two_files)
    assert list_staged(f"s3://{bucket}/datasets") == []


_SLOW_STAGER = """
import sys, time
from searchtune.data.stage import stage_dataset
stage_dataset(sys.argv[1], sys.argv[2], on_progress=lambda n: time.sleep(60))
"""


def test_s3_upload_killed_with_sigkill_is_not_a_dataset(s3, mini_src: Path) -> None:
    """A real uploader process killed with SIGKILL (no cleanup code runs) after its first file reached the store."""
    client, bucket = s3
    uri = f"s3://{bucket}/datasets/killed"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_STAGER, str(mini_src), uri], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _keys(client, bucket, "datasets/killed/") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert _keys(client, bucket, "datasets/killed/"), "the uploader never wrote its first file"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(_keys(client, bucket, "datasets/killed/")) == 1
    assert list_staged(f"s3://{bucket}/datasets") == []
    with pytest.raises(StageError, match="not a staged dataset"):
        read_manifest(uri)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_line_error(result, needle: str) -> None:
    flat = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and flat.startswith("error:") and flat.count("error:") == 1
    assert needle in flat, flat


def test_s3_failures_are_one_clear_line(s3, mini_src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, bucket = s3
    _one_line_error(runner.invoke(app, ["data", "stage", str(mini_src), "s3://no-such-bucket-t-data/x"]),
                    "does the bucket exist")
    dead = f"http://127.0.0.1:{_free_port()}"
    _one_line_error(runner.invoke(app, ["data", "stage", str(mini_src), f"s3://{bucket}/x", "--endpoint-url", dead]),
                    f"cannot reach the store for s3://{bucket}/x ({dead})")
    _one_line_error(runner.invoke(app, ["data", "verify", f"s3://{bucket}/x", "--endpoint-url", dead]),
                    "cannot reach the store")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    _one_line_error(runner.invoke(app, ["data", "stage", str(mini_src), f"s3://{bucket}/x"]),
                    "no credentials for s3://")
    assert storage_options_for("s3://b/x", "http://e")["endpoint_url"] == "http://e"


def test_oss_without_ossfs_is_one_clear_line(mini_src: Path, store: Path) -> None:
    try:
        import ossfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ossfs is installed here")
    _one_line_error(runner.invoke(app, ["data", "stage", str(mini_src), "oss://bucket/x"]),
                    "pip install 'searchtune[oss]'")
