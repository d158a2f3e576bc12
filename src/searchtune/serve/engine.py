"""The served model and its hot swap.

A :class:`LoadedModel` is a backend plus its own batcher. Each request pins the model that is current when it
arrives and finishes on it, so when ``promote`` moves the alias the server follows, the new version is loaded beside
the old one, warmed, and swapped in with one assignment; the old one is closed only once its last in-flight request
is done. No request ever sees a half-loaded model or a freed one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from searchtune.registry.registry import ModelRegistry, RegistryError
from searchtune.serve.backends import Backend, load_backend
from searchtune.serve.batcher import BatchStats, DynamicBatcher
from searchtune.serve.metrics import ServerMetrics
from searchtune.serve.settings import ServeSettings
from searchtune.vectors.identity import model_fingerprint

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    backend: Backend
    batcher: DynamicBatcher
    name: str
    version: int | None
    path: str
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    #: identity of the weights (searchtune.vectors.identity): indices record it, the gateway compares it
    fingerprint: str | None = None

    @property
    def kind(self) -> str:
        return self.backend.kind

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "owned_by": "searchtune", "created": int(self.loaded_at),
                "version": self.version, "path": self.path, "fingerprint": self.fingerprint,
                **self.backend.describe()}


class ModelNotReady(RuntimeError):
    pass


class Engine:
    """Owns the current model, the registry watch and the scoring entry points every route calls."""

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics):
        self.settings = settings
        self.metrics = metrics
        self.current: LoadedModel | None = None
        self.error: str | None = None
        self._watch_task: asyncio.Task | None = None
        self._load_task: asyncio.Task | None = None
        self._registry = ModelRegistry(settings.store) if settings.is_registry_ref else None
        self._failed_version: int | None = None  # a version that failed to load is not retried every poll

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load in the background so /health answers at once and /ready turns true when the model is warm."""
        self._load_task = asyncio.create_task(self._initial_load())

    async def _initial_load(self) -> None:
        try:
            version, path = await asyncio.to_thread(self._resolve)
            self.current = await self._load(path, version)
            self._publish_info()
            if self._registry is not None and self.settings.poll_interval_s > 0:
                self._watch_task = asyncio.create_task(self._watch())
        except Exception as exc:
            self.error = f"model load failed: {exc}"
            log.exception("model load failed")

    async def stop(self) -> None:
        for task in (self._watch_task, self._load_task):
            if task and not task.done():
                task.cancel()
        if self.current:
            await self.current.batcher.close()
            self.current.backend.close()

    @property
    def ready(self) -> bool:
        return self.current is not None

    def _resolve(self) -> tuple[int | None, str]:
        if self._registry is None:
            return None, str(Path(self.settings.model).expanduser().resolve())
        name, version = self._registry.resolve_version(self.settings.model)
        return version, str(self._registry.resolve(f"{name}@{version}"))

    async def _load(self, path: str, version: int | None) -> LoadedModel:
        s = self.settings

        def load() -> Backend:
            backend = load_backend(path, backend=s.backend, precision=s.precision, quantize=s.quantize,
                                   max_length=s.max_length, device=s.device)
            backend.warm()
            return backend

        backend = await asyncio.to_thread(load)
        fingerprint = await asyncio.to_thread(model_fingerprint, path)
        batcher = DynamicBatcher(backend.run, lambda unit: unit.tokens, backend.max_length,
                                 max_batch_inputs=s.max_batch_inputs, max_batch_tokens=s.max_batch_tokens,
                                 max_wait_s=s.max_wait_ms / 1000,
                                 stats=BatchStats(on_batch=self.metrics.on_batch,
                                                  on_queue=self.metrics.queue_depth.set))
        batcher.start()
        name = self.settings.model.partition("@")[0] if self._registry else Path(path).name
        log.info("serving %s version %s from %s with %s", name, version, path, backend.describe())
        return LoadedModel(backend=backend, batcher=batcher, name=name, version=version, path=path,
                           fingerprint=fingerprint)

    def _publish_info(self) -> None:
        if self.current:
            info = {k: str(v) for k, v in self.current.describe().items()}
            self.metrics.model.info(info)

    # ------------------------------------------------------------ hot swap
    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.check_for_update()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.swaps.labels("failed").inc()
                log.exception("hot swap failed; still serving version %s",
                              self.current.version if self.current else None)

    async def check_for_update(self) -> bool:
        """Swap to the version the alias points at now, if it moved. Returns True when a swap happened."""
        if self._registry is None or self.current is None:
            return False
        try:
            version, path = await asyncio.to_thread(self._resolve)
        except RegistryError as exc:
            log.warning("registry check failed: %s", exc)
            return False
        if version == self.current.version or version == self._failed_version:
            return False
        log.info("alias %s moved: %s -> %s; loading beside the current model", self.settings.model,
                 self.current.version, version)
        try:
            new = await self._load(path, version)
        except Exception:
            self._failed_version = version
            raise
        old, self.current = self.current, new  # the switch: one assignment on the event loop
        self._publish_info()
        self.metrics.swaps.labels("ok").inc()
        asyncio.create_task(self._retire(old))
        return True

    async def _retire(self, old: LoadedModel) -> None:
        deadline = time.monotonic() + self.settings.request_timeout_s + 5
        while old.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await old.batcher.close()
        old.backend.close()
        del old
        gc.collect()
        log.info("previous model freed")

    # ------------------------------------------------------------ requests
    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[LoadedModel]:
        """The current model, kept alive (not retired by a hot swap) until the block ends."""
        model = self.current
        if model is None:
            raise ModelNotReady(self.error or "model is loading")
        model.inflight += 1
        try:
            yield model
        finally:
            model.inflight -= 1

    def served_names(self) -> set[str]:
        """Names a request's ``model`` field may carry: the served name, the reference it was started with,
        the folder, and what ``SEARCHTUNE_SERVE_MODEL_NAMES`` adds."""
        names = set(self.settings.model_names) | {self.settings.model, self.settings.model.partition("@")[0]}
        if self.current is not None:
            names |= {self.current.name, self.current.path, Path(self.current.path).name}
            if self.current.version is not None:
                names.add(f"{self.current.name}@{self.current.version}")
        return {n for n in names if n}
