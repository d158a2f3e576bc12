"""What ``models list`` and ``models show`` print: the facts that decide a promotion, not the raw index.json.

A version's record holds its training card (training.json: task, base model, dev history, config), the metrics
registered with it and the evaluations ``eval --rerank NAME@ALIAS`` recorded on it. The key metric shown is the
newest recorded evaluation's NDCG@10, else the dev NDCG@10 the training selected the checkpoint on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

KINDS = {"embed": "embedding", "rerank": "cross-encoder"}


def kind_of(record: dict[str, Any]) -> str:
    task = (record.get("card") or {}).get("task")
    return KINDS.get(task, task or "-")


def base_of(record: dict[str, Any]) -> str:
    base = (record.get("card") or {}).get("base_model") or "-"
    return Path(base).name if "/" in base and Path(base).is_absolute() else base


def key_metric(record: dict[str, Any]) -> str:
    """``0.7012 NDCG@10 (scifact/test)`` from the newest evaluation, else the training's dev score."""
    evaluations = record.get("evaluations") or []
    if evaluations:
        last = evaluations[-1]
        value = last.get("metrics", {}).get("NDCG@10")
        if value is not None:
            return f"{value:.4f} NDCG@10 ({last['dataset']}/{last['split']})"
    final = ((record.get("card") or {}).get("dev") or {}).get("final") or {}
    for key in ("dev_fused_ndcg@10", "dev_ndcg@10"):
        if key in final:
            return f"{final[key]:.4f} {'fused ' if 'fused' in key else ''}NDCG@10 (dev)"
    metrics = record.get("metrics") or {}
    if metrics:
        name, value = next(iter(sorted(metrics.items())))
        return f"{value:.4f} {name}"
    return "-"


def list_table(indexes: dict[str, dict[str, Any]]) -> Table:
    """One row per version, newest first within a model."""
    table = Table(title="models", title_justify="left")
    for column in ("name", "version", "kind", "base model", "created", "key metric", "aliases"):
        table.add_column(column, overflow="fold")
    for name, index in indexes.items():
        aliases = index.get("aliases", {})
        for version in sorted((int(v) for v in index.get("versions", {})), reverse=True):
            record = index["versions"][str(version)]
            pointing = ", ".join(sorted(a for a, v in aliases.items() if int(v) == version)) or ""
            table.add_row(escape(name), str(version), kind_of(record), escape(base_of(record)),
                          str(record.get("created", "-")).replace("T", " ").replace("+00:00", "Z"),
                          escape(key_metric(record)), escape(pointing))
    return table


def show_table(entry: dict[str, Any]) -> Table:
    """A two-column summary of one version (``--json`` prints the raw record)."""
    card = entry.get("card") or {}
    table = Table(title=escape(f"{entry['name']} version {entry['version']}"), title_justify="left",
                  show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, str]] = [
        ("kind", kind_of(entry)), ("base model", str(card.get("base_model", "-"))),
        ("aliases", ", ".join(entry.get("aliases", [])) or "-"), ("created", str(entry.get("created", "-"))),
        ("source", str(entry.get("source", "-"))), ("stored at", str(entry.get("uri", "-"))),
        ("size", f"{entry.get('size_bytes', 0) / 1e6:.1f} MB in {len(entry.get('files', {}))} files"),
    ]
    if entry.get("description"):
        rows.append(("description", entry["description"]))
    if card:
        config = card.get("config") or {}
        rows.append(("training", f"{card.get('global_step', '?')} steps in {card.get('train_seconds', '?')} s, "
                                 f"loss {config.get('loss', '?')}, lr {config.get('learning_rate', '?')}, "
                                 f"batch {config.get('batch_size', '?')}, max length {config.get('max_length', '?')}"))
        final = (card.get("dev") or {}).get("final") or {}
        if final:
            rows.append(("dev (kept checkpoint)", ", ".join(f"{k.removeprefix('dev_')} {v:.4f}"
                                                           for k, v in sorted(final.items())[:6])))
    for evaluation in (entry.get("evaluations") or [])[-5:]:
        figures = ", ".join(f"{m} {v:.4f}" for m, v in evaluation.get("metrics", {}).items())
        bm25 = evaluation.get("bm25", {}).get("NDCG@10")
        rows.append((f"eval {evaluation['dataset']}/{evaluation['split']}",
                     f"{figures}{f' (BM25 NDCG@10 {bm25:.4f})' if bm25 is not None else ''}; {evaluation['system']}; "
                     f"{evaluation['at']}"))
    if not entry.get("evaluations") and entry.get("metrics"):
        rows.append(("metrics", ", ".join(f"{k} {v:.4f}" for k, v in sorted(entry["metrics"].items()))))
    for field, value in rows:
        table.add_row(field, escape(value))
    return table
