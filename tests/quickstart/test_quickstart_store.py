"""Issue 12, row "quickstart with SEARCHTUNE_STORE set by the user": the quickstart registers and promotes its model
in its own work folder's store, never in the user's registry, unless ``--store`` says otherwise. The real registry
on the local filesystem, with the real bundled model as what is registered."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.quickstart.options import QuickstartOptions
from searchtune.quickstart.runner import Quickstart
from searchtune.registry.registry import ModelRegistry


def test_quickstart_keeps_its_own_store_even_when_searchtune_store_is_set(tmp_path: Path, monkeypatch,
                                                                          base_model_path: str, scifact_dir: Path):
    user_store = tmp_path / "users-own-registry"
    user_store.mkdir()
    monkeypatch.setenv("SEARCHTUNE_STORE", str(user_store))
    workdir = tmp_path / "quickstart"
    run = Quickstart(QuickstartOptions(dataset=scifact_dir, workdir=workdir), announce=lambda message: None)
    assert run.store == str(workdir / "store")
    ref = run.publish(Path(base_model_path), {"dev": {"final": {"ndcg@10": 0.5}}})
    assert ref == "custom-rerank-v1@prod"
    assert ModelRegistry(run.store).resolve_version(ref) == ("custom-rerank-v1", 1)
    assert ModelRegistry(str(user_store)).names() == [] and not any(user_store.iterdir())

    chosen = tmp_path / "chosen-store"
    explicit = Quickstart(QuickstartOptions(dataset=scifact_dir, workdir=workdir, store_uri=str(chosen)),
                          announce=lambda message: None)
    assert explicit.store == str(chosen)
    assert "--store" in CliRunner().invoke(app, ["quickstart", "--help"]).output
