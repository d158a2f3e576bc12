"""The vector field's mapping and the index metadata that says which model built the vectors.

The metadata lives in the mapping's ``_meta`` (``_meta.searchtune.vectors``), so it travels with the physical index:
when the alias moves to another index, whoever reads the alias reads the metadata of the vectors it now searches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from searchtune.vectors.identity import ModelIdentity

DEFAULT_VECTOR_FIELD = "embedding"
#: ``int8``: int8-quantised HNSW (4x less memory; kept because SciFact NDCG@10 stays within 0.005 of float, see
#: benchmarks/hybrid_scifact.py); ``float``: plain HNSW on float32.
Quantization = Literal["int8", "float"]
DEFAULT_QUANTIZATION: Quantization = "int8"
_INDEX_TYPES = {"int8": "int8_hnsw", "float": "hnsw"}
#: Elasticsearch similarity -> OpenSearch k-NN space type.
_OS_SPACE = {"cosine": "cosinesimil", "dot_product": "innerproduct", "l2_norm": "l2"}


@dataclass(frozen=True)
class VectorSpec:
    """Everything needed to map, fill and later query one index's vectors."""

    field: str
    dims: int
    similarity: str
    model: ModelIdentity
    quantization: Quantization = DEFAULT_QUANTIZATION
    max_length: int | None = None
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index_type(self) -> str:
        return _INDEX_TYPES[self.quantization]

    def field_mapping(self, opensearch: bool = False) -> dict[str, Any]:
        if opensearch:  # k-NN plugin, Lucene engine: pure Java (no native library) and filters during the search
            return {"type": "knn_vector", "dimension": self.dims,
                    "method": {"name": "hnsw", "engine": "lucene", "space_type": _OS_SPACE[self.similarity],
                               "parameters": {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction}}}
        return {"type": "dense_vector", "dims": self.dims, "index": True, "similarity": self.similarity,
                "index_options": {"type": self.index_type, "m": self.hnsw_m,
                                  "ef_construction": self.hnsw_ef_construction}}

    def meta(self) -> dict[str, Any]:
        return {"field": self.field, "dims": self.dims, "similarity": self.similarity,
                "index_type": self.index_type, "model": self.model.to_dict(), "max_length": self.max_length,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **self.extra}


def with_vectors(mapping: dict[str, Any], spec: VectorSpec, opensearch: bool = False) -> dict[str, Any]:
    """``mapping`` plus the vector field and ``_meta.searchtune.vectors`` (a new dict; the input is left alone)."""
    merged = {**mapping, "properties": {**mapping.get("properties", {}), spec.field: spec.field_mapping(opensearch)}}
    meta = dict(mapping.get("_meta", {}))
    vectors = spec.meta()
    if opensearch:
        vectors["index_type"] = "lucene_hnsw"
    meta["searchtune"] = {**meta.get("searchtune", {}), "vectors": vectors}
    merged["_meta"] = meta
    return merged


def read_vector_meta(mapping_response: dict[str, Any]) -> dict[str, Any] | None:
    """``_meta.searchtune.vectors`` from a ``GET INDEX/_mapping`` answer (one physical index, possibly via an
    alias), or ``None`` when the index has no vectors. Several indices answering is ambiguous and also ``None``."""
    if len(mapping_response) != 1:
        return None
    body = next(iter(mapping_response.values()))
    meta = (body.get("mappings") or {}).get("_meta") or {}
    vectors = (meta.get("searchtune") or {}).get("vectors")
    return vectors if isinstance(vectors, dict) and vectors.get("field") else None


def meta_identity(vector_meta: dict[str, Any] | None) -> ModelIdentity | None:
    return ModelIdentity.from_dict((vector_meta or {}).get("model"))
