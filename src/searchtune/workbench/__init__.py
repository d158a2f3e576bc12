"""The relevance workbench: compare search configurations side by side, grade results into versioned judgment
lists, evaluate query sets, and hand the lists to training (docs/workbench.md)."""
