"""The running gateway's shared state: settings, the cluster connection, the rerank client, the pipeline store,
circuit breakers, metrics and the security policies (auth.py, endpoints.py, secrets.py, index_guard.py). Route
handlers (proxy, admin, search, msearch) receive it instead of importing each other, so each stays one job."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from searchtune.gateway import secrets
from searchtune.gateway.auth import PipelineAuth
from searchtune.gateway.breaker import BreakerRegistry
from searchtune.gateway.credentials import redact_url, split_credentials
from searchtune.gateway.endpoints import EndpointPolicy
from searchtune.gateway.index_guard import ProtectedIndex, watch_aliases
from searchtune.gateway.defaults import DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_S
from searchtune.gateway.metrics import GatewayMetrics
from searchtune.gateway.model_calls import ModelCalls
from searchtune.gateway.pipeline_store import DEFAULT_INDEX, PipelineStore
from searchtune.gateway.policy import vet_pipeline
from searchtune.gateway.product import ClusterProduct
from searchtune.gateway.resolve import IndexResolver, default_pipeline
from searchtune.rerank_client import RerankClient
from searchtune.gateway.upstream import Upstream
from searchtune.gateway.vector_meta import VectorMetaCache


@dataclass
class GatewaySettings:
    """Everything a gateway process is configured with (CLI flags / env vars map onto these)."""

    es_url: str = field(repr=False)  # may hold user:pass; credentials.py splits it
    timeout_s: float = DEFAULT_TIMEOUT_S  # model call budget per search
    es_timeout_s: float = 120.0
    breaker_failures: int = 3
    breaker_reset_s: float = 10.0
    pipeline_index: str = DEFAULT_INDEX
    cache_ttl_s: float = 1.0
    models: dict[str, str] = field(default_factory=dict)  # model_id -> endpoint, for the OpenSearch shape
    default_pipelines: dict[str, str] = field(default_factory=dict)  # index -> pipeline, static
    es_api_key: str | None = field(default=None, repr=False)  # the gateway's own cluster credentials
    lend_credentials: bool = False  # send the gateway's credentials for clients that bring none
    pipeline_auth: str = "admin-key"  # or "cluster" (auth.py)
    admin_key_hashes: list[str] = field(default_factory=list, repr=False)
    secret_prefixes: tuple[str, ...] = (secrets.DEFAULT_SECRET_PREFIX,)
    allow_endpoints: list[str] = field(default_factory=list)  # beyond loopback (endpoints.py)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    probe_interval_s: float = 0.5  # recovery probe of an open circuit (recovery.py)


#: A request header naming the pipeline of one search (or of an ``_msearch``'s searches), for clients whose
#: search call takes no URL parameter: elasticsearch-py's ``es.options(headers={PIPELINE_HEADER: NAME}).search()``.
PIPELINE_HEADER = "x-searchtune-pipeline"


def auth_headers(request: Request) -> dict[str, str]:
    """The caller's credentials, passed on to every request the gateway makes for it (pipeline store included)."""
    return {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "es-security-runas-user")}


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.es_url, self._credentials = split_credentials(settings.es_url, settings.es_api_key)
        self.shown_es_url = redact_url(self.es_url)  # what health and logs show
        secrets.configure(settings.secret_prefixes)
        self.auth = PipelineAuth(settings.pipeline_auth, list(settings.admin_key_hashes))
        self.endpoints = EndpointPolicy([*settings.allow_endpoints, *settings.models.values()])
        self.protected = ProtectedIndex(settings.pipeline_index)
        self.metrics = GatewayMetrics()
        self.breakers = BreakerRegistry(settings.breaker_failures, settings.breaker_reset_s)
        self.upstream: Upstream | None = None
        self.reranker: RerankClient | None = None
        self.calls: ModelCalls | None = None
        self.store: PipelineStore | None = None
        self.vectors: VectorMetaCache | None = None
        self._alias_watch: asyncio.Task | None = None
        self.resolver: IndexResolver | None = None
        self.product = ClusterProduct()

    async def start(self) -> None:
        self.upstream = Upstream(self.es_url, timeout_s=self.settings.es_timeout_s,
                                 authorization=self._credentials.authorization,
                                 lend_credentials=self.settings.lend_credentials)
        await self.upstream.start()
        self.reranker = RerankClient()
        self.calls = ModelCalls(self.reranker, self.endpoints, self.metrics, self.settings.probe_interval_s)
        self.store = PipelineStore(self.upstream, self.settings.pipeline_index, self.settings.cache_ttl_s,
                                   delegate_writes=self.auth.delegates,
                                   vet=lambda pipeline: vet_pipeline(pipeline, self.endpoints))
        self.vectors = VectorMetaCache(self.upstream)
        self._alias_watch = asyncio.create_task(watch_aliases(self.protected, self.upstream))
        self.resolver = IndexResolver(self.upstream, self.settings.cache_ttl_s)
        await self.product.detect(self.upstream)  # unknown (cluster down) is fine: asked again later

    async def stop(self) -> None:
        if self._alias_watch:
            self._alias_watch.cancel()
        if self.calls:
            await self.calls.probes.aclose()
        if self.upstream:
            await self.upstream.close()
        if self.reranker:
            await self.reranker.aclose()

    async def default_pipeline(self, index: str, auth: dict[str, str], expand_wildcards: str | None = None
                               ) -> str | None:
        """The default pipeline of a search on ``index`` (a name, alias, wildcard or comma list; ``""``: all),
        resolved as the cluster resolves the target (resolve.py). Static defaults win over stored ones."""
        defaults = {**await self.store.defaults_cached(auth), **self.settings.default_pipelines}
        return await default_pipeline(index, defaults, self.resolver, auth, expand_wildcards)

    async def pipeline_for(self, request: Request, index: str) -> str | None:
        """The pipeline a ``_search`` runs through: ``?search_pipeline=``, else the ``X-Searchtune-Pipeline``
        header (``_none``/empty opts out of either), else the target's default; ``None`` means plain proxying."""
        explicit = request.query_params.get("search_pipeline", request.headers.get(PIPELINE_HEADER))
        if explicit is not None:
            return None if explicit in ("", "_none") else explicit
        return await self.default_pipeline(index, auth_headers(request), request.query_params.get("expand_wildcards"))
