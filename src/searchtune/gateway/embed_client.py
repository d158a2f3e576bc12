"""Embedding one query through an endpoint, for the ``hybrid`` processor: OpenAI ``/v1/embeddings`` or TEI
``/embed``. One request, no retry (the search is waiting; the breaker and the BM25 fallback handle trouble).

Failures raise :class:`~searchtune.rerank_client.RerankError` with the same short reasons the rerank step
reports (``timeout``, ``connect_error``, ``http_503``, ``bad_response``), so both processors fall back alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

from searchtune.rerank_client import RerankError, json_payload, post_to_model

#: Header `searchtune serve` names its weights in (see searchtune.vectors.identity).
FINGERPRINT_HEADER = "x-searchtune-model-fingerprint"


@dataclass(frozen=True)
class QueryVector:
    vector: list[float]
    fingerprint: str | None   # the endpoint's model fingerprint, when it reports one
    model: str | None         # the model name the endpoint reports (OpenAI dialect)


async def embed_query(http: httpx.AsyncClient, endpoint: str, api: str, model: str | None, text: str,
                      headers: dict[str, str], timeout: float) -> QueryVector:
    body: dict = {"input": [text], "encoding_format": "float"} if api == "openai" else {"inputs": [text],
                                                                                       "normalize": True}
    if api == "openai" and model:
        body["model"] = model
    response = await post_to_model(http, endpoint, body, headers, timeout)
    payload = json_payload(response)
    try:
        row = payload["data"][0]["embedding"] if api == "openai" else payload[0]
        vector = [float(x) for x in row]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RerankError("bad_response", f"no embedding in answer: {response.text[:200]}") from exc
    norm = math.sqrt(sum(x * x for x in vector))
    if not vector or not math.isfinite(norm) or norm == 0:
        raise RerankError("bad_response", "empty or zero embedding")
    reported = payload.get("model") if isinstance(payload, dict) else None
    return QueryVector([x / norm for x in vector], response.headers.get(FINGERPRINT_HEADER), reported)
