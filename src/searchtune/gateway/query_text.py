"""Which text is the query and which document fields get scored: the rule, in one place.

Query text, first match wins:

1. ``ext.rerank.query_context.query_text`` in the search body (OpenSearch's convention);
2. a query-text path: ``ext.rerank.query_context.query_text_path`` in the body, else the pipeline's
   ``query_text_path``; a dotted path into the body such as ``query.multi_match.query`` (``$.`` prefix and ``[n]``
   list indexes allowed);
3. the first full-text query found walking the query (bool clauses, ``dis_max``, ``boosting``, ``constant_score``,
   ``function_score`` included): ``match``, ``match_phrase``, ``match_phrase_prefix``, ``match_bool_prefix``,
   ``multi_match``, ``combined_fields``, ``query_string``, ``simple_query_string``.

Document fields to score, first non-empty wins (:func:`document_texts`):

1. the pipeline's fields (``field`` / ``document_fields``) that the hit's ``_source`` holds — the vendor guide puts
   ``query_text`` in ``field``, which names no document field, so it is skipped for every hit;
2. the fields the query searched (boosts such as ``^2`` stripped, ``*`` patterns matched against the source);
3. every string value of ``_source``.

Several fields are joined with ``". "`` in the order listed (``title`` before ``desc`` for
``fields: ["title^2", "desc"]``): the ``"{title}. {text}"`` form searchtune trains and evaluates rerankers on
(:attr:`searchtune.data.records.Document.full_text`), so the gateway scores what the model learned from. A pipeline's
``separator`` overrides it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Any

_FULL_TEXT = ("multi_match", "combined_fields", "match", "match_phrase", "match_phrase_prefix", "match_bool_prefix",
              "query_string", "simple_query_string")
_STRING_QUERIES = ("query_string", "simple_query_string")


def get_path(body: Any, path: str) -> Any:
    """Follow ``a.b[0].c`` (optionally ``$.``-prefixed) into nested dicts/lists; None when absent."""
    node = body
    path = path.strip()
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return None
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _walk_queries(query: Any) -> Iterable[tuple[str, Any]]:
    """Depth-first (kind, clause) pairs of a query DSL tree, scoring clauses before filters."""
    if not isinstance(query, dict):
        return
    for kind, clause in query.items():
        yield kind, clause
        if kind == "bool" and isinstance(clause, dict):
            for occur in ("must", "should", "filter"):
                sub = clause.get(occur)
                for item in sub if isinstance(sub, list) else [sub]:
                    yield from _walk_queries(item)
        elif kind == "dis_max" and isinstance(clause, dict):
            for item in clause.get("queries", []):
                yield from _walk_queries(item)
        elif kind in ("boosting",) and isinstance(clause, dict):
            yield from _walk_queries(clause.get("positive"))
        elif kind in ("constant_score",) and isinstance(clause, dict):
            yield from _walk_queries(clause.get("filter"))
        elif kind in ("function_score", "script_score", "nested") and isinstance(clause, dict):
            yield from _walk_queries(clause.get("query"))


def full_text_clause(body: dict) -> tuple[str, list[str]] | None:
    """(query text, fields it searched) of the first full-text clause of ``body["query"]``, or None."""
    for kind, clause in _walk_queries(body.get("query")):
        if kind not in _FULL_TEXT or not isinstance(clause, dict):
            continue
        if kind in ("multi_match", "combined_fields") or kind in _STRING_QUERIES:
            text = clause.get("query")
            fields = clause.get("fields") or ([clause["default_field"]] if clause.get("default_field") else [])
            if isinstance(text, str) and text.strip():
                return text, [str(f) for f in fields]
            continue
        # match-family: {"match": {"field": "text"}} or {"match": {"field": {"query": "text", ...}}}
        for field_name, spec in clause.items():
            text = spec.get("query") if isinstance(spec, dict) else spec
            if isinstance(text, str) and text.strip():
                return text, [field_name]
    return None


def extract_query_text(body: dict, query_text_path: str | None = None) -> str | None:
    """The query text by the rule in this module's docstring, or None when the request has none."""
    context = get_path(body, "ext.rerank.query_context") or {}
    if isinstance(context, dict):
        text = context.get("query_text")
        if isinstance(text, str) and text.strip():
            return text
        path = context.get("query_text_path") or query_text_path
    else:
        path = query_text_path
    if path:
        text = get_path(body, path)
        if isinstance(text, str) and text.strip():
            return text
    found = full_text_clause(body)
    return found[0] if found else None


def searched_fields(body: dict) -> list[str]:
    """Fields of the first full-text clause, boosts stripped: ``["title^2", "desc"]`` -> ``["title", "desc"]``."""
    found = full_text_clause(body)
    return [f.split("^", 1)[0] for f in found[1]] if found else []


def _source_value(source: dict, name: str) -> Any:
    if name in source:
        return source[name]
    return get_path(source, name)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_as_text(v) for v in value if v is not None)
    return str(value)


def _matching(source: dict, patterns: Sequence[str]) -> list[str]:
    names: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?"):
            names += [k for k in source if fnmatch.fnmatchcase(k, pattern) and k not in names]
        elif _source_value(source, pattern) is not None and pattern not in names:
            names.append(pattern)
    return names


DEFAULT_SEPARATOR = ". "


def document_text(source: dict, configured: Sequence[str], searched: Sequence[str],
                  separator: str = DEFAULT_SEPARATOR) -> str:
    """The text of one hit to send to the model, by the field rule in this module's docstring."""
    source = source or {}
    names = _matching(source, configured) or _matching(source, searched)
    if names:
        return separator.join(t for t in (_as_text(_source_value(source, n)).strip() for n in names) if t)
    return separator.join(v.strip() for v in source.values() if isinstance(v, str) and v.strip())


def document_texts(hits: Sequence[dict], configured: Sequence[str], body: dict,
                   separator: str = DEFAULT_SEPARATOR) -> list[str]:
    searched = searched_fields(body)
    return [document_text(hit.get("_source") or {}, configured, searched, separator) for hit in hits]


def source_fields_needed(configured: Sequence[str], body: dict) -> list[str]:
    """Source fields the rerank step reads, to ask the cluster for them when the client filtered ``_source``."""
    return list(dict.fromkeys([*configured, *searched_fields(body)]))
