"""Relevance evaluation: metrics over runs, BM25 baselines, reranked runs, comparisons and reports."""
