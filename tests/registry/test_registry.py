"""Model registry on real filesystems: a local folder store and fsspec's in-memory store (the non-local code path
used by s3:// and oss://), with real concurrent processes for the locking test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.registry import ModelRegistry, RegistryError, resolve_model_ref


def make_model(folder: Path, tag: str, card: bool = True) -> Path:
    """A small model-shaped folder: the registry copies bytes and reads the card, it never loads weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"], "tag": tag}))
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "tokenizer.json").write_text(json.dumps({"tag": tag}))
    if card:
        (folder / "training.json").write_text(json.dumps({"base_model": "minilm", "epochs": 1,
                                                          "metrics": {"dev_ndcg@10": 0.61}}))
    return folder


@pytest.fixture()
def store(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(str(tmp_path / "store"), cache_dir=tmp_path / "cache")


def test_register_copies_an_immutable_version_with_card_and_metrics(store: ModelRegistry, tmp_path: Path) -> None:
    src = make_model(tmp_path / "m1", "a")
    v1 = store.register("rr", str(src), metrics={"test_ndcg@10": 0.7}, description="first")
    v2 = store.register("rr", str(make_model(tmp_path / "m2", "b", card=False)))
    assert (v1, v2) == (1, 2)
    entry = store.show("rr@1")
    assert entry["card"]["base_model"] == "minilm"
    assert entry["metrics"] == {"dev_ndcg@10": 0.61, "test_ndcg@10": 0.7}
    assert set(entry["files"]) == {"config.json", "weights.bin", "sub/tokenizer.json", "training.json"}
    assert entry["files"]["weights.bin"]["size"] == 2048 and len(entry["files"]["weights.bin"]["sha256"]) == 64
    stored = store.resolve("rr@1")
    original = (src / "weights.bin").read_bytes()
    (src / "weights.bin").write_bytes(b"changed later")  # the source changing must not touch the version
    assert (stored / "weights.bin").read_bytes() == original
    assert json.loads((stored / "sub" / "tokenizer.json").read_text())["tag"] == "a"
    assert store.show("rr")["version"] == 2  # bare name = latest
    assert store.list() == [{"name": "rr", "versions": [1, 2], "latest": 2, "aliases": {}}]


def test_promote_rollback_and_alias_history(store: ModelRegistry, tmp_path: Path) -> None:
    for i in range(3):
        store.register("rr", str(make_model(tmp_path / f"m{i}", str(i))))
    store.promote("rr", 1, "prod")
    store.promote("rr", 3, "prod")
    assert store.resolve_version("rr@prod") == ("rr", 3)
    assert store.show("rr@prod")["aliases"] == ["prod"]
    assert store.rollback("rr", "prod") == 1
    assert store.resolve_version("rr@prod") == ("rr", 1)
    with pytest.raises(RegistryError, match="no earlier version"):
        store.rollback("rr", "prod")
    with pytest.raises(RegistryError, match="no version 9"):
        store.promote("rr", 9, "prod")
    with pytest.raises(RegistryError, match="no alias 'staging'"):
        store.resolve_version("rr@staging")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        store.show("nope@prod")


def test_delete_refused_while_an_alias_points_at_the_version(store: ModelRegistry, tmp_path: Path) -> None:
    store.register("rr", str(make_model(tmp_path / "a", "a")))
    store.register("rr", str(make_model(tmp_path / "b", "b")))
    store.promote("rr", 1, "prod")
    with pytest.raises(RegistryError, match="alias\\(es\\) prod point at it"):
        store.delete("rr", 1)
    store.promote("rr", 2, "prod")
    store.delete("rr", 1)
    assert store.list()[0]["versions"] == [2]
    assert not (Path(store.root) / "models/rr/versions/1").exists()
    with pytest.raises(RegistryError):
        store.rollback("rr", "prod")  # the only earlier version is gone
    assert store.register("rr", str(make_model(tmp_path / "c", "c"))) == 3  # numbers are never reused


def test_concurrent_registrations_from_separate_processes_never_lose_one(tmp_path: Path) -> None:
    src = make_model(tmp_path / "m", "x")
    uri = str(tmp_path / "store")
    code = ("import sys; from searchtune.registry import ModelRegistry; "
            "print(ModelRegistry(sys.argv[1]).register('rr', sys.argv[2]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, uri, str(src)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o) for o in outputs) == [1, 2, 3, 4, 5, 6]
    assert ModelRegistry(uri).list()[0]["versions"] == [1, 2, 3, 4, 5, 6]


def test_crash_leftovers_stay_invisible_and_stale_locks_are_broken(store: ModelRegistry, tmp_path: Path) -> None:
    store.register("rr", str(make_model(tmp_path / "a", "a")))
    model_dir = Path(store.root) / "models" / "rr"
    # A crash while copying leaves a staging folder; a crash between the move and the index write leaves a
    # numbered folder the index does not name. Neither may become visible, and number 2 must not be reused.
    make_model(model_dir / ".staging" / uuid.uuid4().hex, "half")
    make_model(model_dir / "versions" / "2", "orphan")
    assert store.list()[0]["versions"] == [1]
    with pytest.raises(RegistryError):
        store.show("rr@2")
    # A lock left by a crashed writer long ago is broken instead of blocking forever.
    lock = model_dir / ".lock"
    lock.write_text("dead writer")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert store.register("rr", str(make_model(tmp_path / "b", "b"))) == 3
    assert not lock.exists()
    # A fresh lock (a live writer) makes others wait rather than proceed.
    lock.write_text("live writer")
    with pytest.raises(RegistryError, match="timed out"):
        with store._locked("rr", timeout=0.3):
            pass
    lock.unlink()


def test_remote_store_resolves_into_a_local_cache(tmp_path: Path) -> None:
    uri = f"memory://searchtune-test-{uuid.uuid4().hex}"
    reg = ModelRegistry(uri, cache_dir=tmp_path / "cache")
    assert not reg.is_local
    reg.register("emb", str(make_model(tmp_path / "m", "remote")))
    reg.promote("emb", 1, "prod")
    local = reg.resolve("emb@prod")
    assert local == tmp_path / "cache" / "emb" / "1"
    assert json.loads((local / "sub" / "tokenizer.json").read_text())["tag"] == "remote"
    assert reg.show("emb@prod")["uri"].startswith("memory://")


def test_resolve_model_ref_accepts_folders_and_registry_refs(store: ModelRegistry, tmp_path: Path) -> None:
    src = make_model(tmp_path / "plain", "p")
    assert resolve_model_ref(str(src), store.uri) == src.resolve()
    store.register("rr", str(src))
    assert resolve_model_ref("rr@1", store.uri) == Path(store.root) / "models/rr/versions/1"
    with pytest.raises(RegistryError, match="invalid model name"):
        resolve_model_ref("bad name!", store.uri)


def test_models_cli_end_to_end(tmp_path: Path) -> None:
    from searchtune.cli.main import app

    runner = CliRunner()
    env = {"SEARCHTUNE_STORE": str(tmp_path / "store")}
    src = make_model(tmp_path / "m", "cli")

    def run(*args: str):
        return runner.invoke(app, ["models", *args], env=env)

    assert run("register", "rr", str(src), "--metric", "ndcg=0.5").exit_code == 0
    assert run("register", "rr", str(src)).exit_code == 0
    assert run("promote", "rr", "1", "--alias", "prod").exit_code == 0
    assert run("promote", "rr", "2", "--alias", "prod").exit_code == 0
    listing = run("list", "--json")
    assert json.loads(listing.stdout)[0]["aliases"] == {"prod": 2}
    shown = run("show", "rr@prod", "--json")
    assert json.loads(shown.stdout)["version"] == 2
    assert json.loads(run("show", "rr@1", "--json").stdout)["metrics"]["ndcg"] == 0.5
    table = run("list")
    assert table.exit_code == 0
    rows = [line for line in table.stdout.splitlines() if "│ rr" in line]
    assert len(rows) == 2 and "prod" in rows[0] and "minilm" in rows[1] and "0.6100" in rows[1]  # newest first
    summary = run("show", "rr@1")
    assert summary.exit_code == 0 and "rr version 1" in summary.stdout and "0.5000" in summary.stdout
    assert len(summary.stdout.splitlines()) < 30 and "sha256" not in summary.stdout
    refused = run("delete", "rr", "2")
    assert refused.exit_code == 1 and "refusing to delete rr@2" in " ".join(refused.output.split())
    assert run("rollback", "rr", "--alias", "prod").exit_code == 0
    assert json.loads(run("show", "rr@prod", "--json").stdout)["version"] == 1
    assert run("delete", "rr", "2").exit_code == 0
    bad = run("register", "rr", str(tmp_path / "missing"))
    assert bad.exit_code == 1 and "is not a folder" in " ".join(bad.output.split())  # rich wraps lines
