"""The import contracts in pyproject.toml ([tool.importlinter], explained in docs/architecture.md) hold on the real
tree, and a deliberate violation in a copy of the package makes `lint-imports` fail: the check can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src_dir: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src_dir)}  # grimp imports-by-path: the copy, not the installed package
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=src_dir.parent,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """A copy of src/searchtune and pyproject.toml in a scratch folder."""
    work = tmp_path_factory.mktemp("contracts")
    shutil.copytree(ROOT / "src" / "searchtune", work / "src" / "searchtune",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    return work


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint(ROOT / "src", ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("importer, imported, contract", [
    ("gateway/admin.py", "searchtune.serve.engine", "gateway talks to models over HTTP"),
    ("data/mining.py", "searchtune.search.retrieval", "data never imports search"),
    ("serve/engine.py", "searchtune.train.config", "serve never imports train"),
    ("eval/metrics.py", "searchtune.cli.common", "Stages never import the CLI"),
])
def test_a_deliberate_violation_fails_the_check(package_copy: Path, importer: str, imported: str,
                                                contract: str) -> None:
    module = package_copy / "src" / "searchtune" / importer
    original = module.read_text()
    try:
        module.write_text(original + f"\n\nimport {imported}  # deliberate violation\n")
        result = _lint(package_copy / "src", package_copy / "pyproject.toml")
    finally:
        module.write_text(original)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(contract.lower() in line.lower() for line in broken) or contract.lower() in result.stdout.lower(), \
        result.stdout
    assert imported.rsplit(".", 1)[0] in result.stdout  # the report names the forbidden import
