"""Which model versions were trained on which judgment list version: read from the registry's cards.

``searchtune train --judgments LIST`` writes ``data.judgments`` (name, version, qrels sha256) into training.json;
registering the folder keeps that file as the version's card, so the registry alone answers the question.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from searchtune.registry.registry import ModelRegistry, RegistryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedOn:
    model: str
    version: int
    aliases: tuple[str, ...]
    created: str
    list_name: str
    list_version: int
    qrels_sha256: str


def trained_on_lists(store: str | None = None, list_name: str | None = None) -> list[TrainedOn]:
    """Every registered model version trained on a judgment list (``list_name``: only that list), newest first."""
    registry = ModelRegistry(store)
    rows: list[TrainedOn] = []
    for name in registry.names():
        try:
            index = registry.index(name)
        except RegistryError:
            continue
        for number, entry in index.get("versions", {}).items():
            used = ((entry.get("card") or {}).get("data") or {}).get("judgments")
            if not isinstance(used, dict) or (list_name and used.get("name") != list_name):
                continue
            aliases = tuple(sorted(a for a, v in index.get("aliases", {}).items() if int(v) == int(number)))
            rows.append(TrainedOn(name, int(number), aliases, entry.get("created", ""), str(used.get("name")),
                                  int(used.get("version", 0)), str(used.get("qrels_sha256", ""))))
    return sorted(rows, key=lambda r: r.created, reverse=True)
