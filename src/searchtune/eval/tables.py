"""Render metric tables the same way everywhere (CLI, benchmarks, reports)."""

from __future__ import annotations

from rich.table import Table

from searchtune.eval.metrics import EvalResult


def metrics_table(results: dict[str, EvalResult], title: str | None = None) -> Table:
    """One row per system, one column per metric, with the delta of each row against the first."""
    names = list(next(iter(results.values())).aggregate) if results else []
    table = Table(title=title)
    table.add_column("system")
    table.add_column("queries", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    baseline = next(iter(results.values()), None)
    for i, (system, result) in enumerate(results.items()):
        cells = []
        for name in names:
            value = result.aggregate[name]
            cell = f"{value:.4f}"
            if i and baseline is not None:
                cell += f" ({value - baseline.aggregate[name]:+.4f})"
            cells.append(cell)
        table.add_row(system, str(result.num_queries), *cells)
    return table
