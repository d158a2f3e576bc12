"""Fixtures for the data tests: a small real SciFact subset (train queries, their positives, distractors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchtune.data import Dataset, load_dataset
from searchtune.data.split import sample_subset


@pytest.fixture(scope="session")
def scifact(scifact_dir: Path) -> Dataset:
    return load_dataset(scifact_dir)


@pytest.fixture(scope="session")
def scifact_mini(scifact: Dataset) -> Dataset:
    return sample_subset(scifact, {"train": 24, "test": 8}, distractors=400, name="scifact-mini")
