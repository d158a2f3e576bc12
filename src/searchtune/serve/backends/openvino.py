"""OpenVINO backend: the model's ONNX export compiled by OpenVINO for this CPU, bf16 on AMX.

Why: on the 2-core AMX machine the profile of a 50-pair, 256-token batch under torch autocast spent a third of its
time outside the matrix units (weight casts per call, GELU, layer norm, softmax as separate passes over memory).
OpenVINO's CPU plugin fuses those into its AMX kernels and keeps the weights in bf16, which made a forward pass
about 1.6x faster than torch autocast in CPU time, with NDCG@10 equal to fp32 on SciFact (benchmarks/serve_bench.py,
benchmarks/serve_profile.py; docs/serving.md).

The ONNX file is the one the ONNX backend exports through sentence-transformers and caches (nothing is exported by
hand, registry versions stay untouched). The torch model stays loaded only for what the interface needs around the
network (config, tokenizer, an embedding model's pooling and normalize modules), so an embedding model's pooling is
the same code as eval's. A batch is split over the compiled model's CPU streams (one per core on this machine) and
run as parallel infer requests: one thread per stream needs no synchronisation between cores inside a layer.

Small batches (under ``SMALL_BATCH_TOKENS`` padded tokens: a search's query) run a second compilation of the same
network with its weights compressed to int8 by NNCF (``nncf.compress_weights``: per-channel, data-free, activations
stay fp32). Why: one 13-token query reads every weight once and does little arithmetic with it, so its time is
memory traffic; on the 2-core AMX machine a query took 8.0 ms p50 / 7.7 ms CPU with bf16 weights and 4.5 ms /
4.4 ms with int8 weights (torch fp32 with two threads: 14 ms / 32-38 ms CPU). Large batches are arithmetic and
stay on the bf16 (AMX) compilation. NDCG@10 of both paths: docs/serving.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from searchtune.config import searchtune_home
from searchtune.scoring import ModelKind, cpu_supports_bf16, load_scorer
from searchtune.serve.backends.base import SMALL_BATCH_TOKENS, Backend, BackendError
from searchtune.serve.backends.onnx import export_onnx
from searchtune.serve.model_card import ModelCard

log = logging.getLogger(__name__)

#: Embedding models' small batches (queries) on int8-compressed weights; SEARCHTUNE_SERVE_SMALL_INT8=0 turns it off.
SMALL_INT8_WEIGHTS = os.environ.get("SEARCHTUNE_SERVE_SMALL_INT8", "1") != "0"

#: ``--precision`` -> OpenVINO's INFERENCE_PRECISION_HINT (and the name /v1/models reports).
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_ov_precision(precision: str) -> str:
    """``auto`` = bf16 where the CPU has AVX512-BF16/AMX (there bf16 is faster and within NDCG budget), else fp32."""
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise BackendError(f"--precision {precision} is not available with --backend openvino (fp32 or bf16)")
    return precision


class OpenVinoBackend(Backend):
    """Runs the compiled OpenVINO model on the padded id batches the base class builds."""

    compiled: Any = None
    streams: int = 1
    source: Path | None = None  # the ONNX file that was compiled
    small: Any = None  # the int8-weight compilation for small batches (None: every batch runs ``compiled``)

    def attach(self, compiled: Any, small: Any = None) -> None:
        import openvino as ov

        self.compiled = compiled
        self._input_names = [port.get_any_name() for port in compiled.inputs]
        self.streams = max(1, int(compiled.get_property("NUM_STREAMS")))
        self._queue = ov.AsyncInferQueue(compiled, self.streams)
        self.small = small
        self._small_request = small.create_infer_request() if small is not None else None
        self._use_small = False
        if self.kind == "embedding":  # the network replaces the Transformer module; pooling etc. stay torch
            self._modules = [self._token_embeddings, *self._modules[1:]]

    def _context(self, padded_tokens: int):
        self._use_small = self._small_request is not None and padded_tokens < SMALL_BATCH_TOKENS
        return super()._context(padded_tokens)

    def _infer(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        """First output of the network for the batch: a small batch in one request on the int8-weight network,
        else the rows split over the streams and run in parallel."""
        arrays = {name: features[name].numpy() for name in self._input_names}
        if self._use_small:
            return self._small_request.infer(arrays)[0].copy()
        rows = next(iter(arrays.values())).shape[0]
        parts = np.array_split(np.arange(rows), min(self.streams, rows))
        results: list[Any] = [None] * len(parts)

        def done(request, index: int) -> None:
            results[index] = request.get_output_tensor(0).data.copy()

        self._queue.set_callback(done)
        for index, part in enumerate(parts):
            self._queue.start_async({n: a[part[0]:part[-1] + 1] for n, a in arrays.items()}, index)
        self._queue.wait_all()
        return np.concatenate(results)

    def _logits(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        return self._infer(features).astype(np.float32)

    def _token_embeddings(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["token_embeddings"] = torch.from_numpy(self._infer(features).astype(np.float32))
        return features

    def close(self) -> None:
        super().close()
        self.compiled = self.small = None
        self._queue = self._small_request = None


def compile_network(onnx_file: Path, precision: str, **properties: Any) -> Any:
    """The ONNX network compiled for this CPU at ``precision`` (fp32/bf16), one stream per core (THROUGHPUT)."""
    import openvino as ov

    try:
        return ov.Core().compile_model(str(onnx_file), "CPU", {"INFERENCE_PRECISION_HINT": PRECISIONS[precision],
                                                              "PERFORMANCE_HINT": "THROUGHPUT", **properties})
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with the plugin's message
        raise BackendError(f"OpenVINO could not compile {onnx_file}: {exc}") from exc


def compile_small_batch_network(onnx_file: Path) -> Any:
    """The network with int8-compressed weights, fp32 activations, for small batches; None without ``nncf``.

    The compressed network is cached (``int8_weights_network``): compressing takes seconds at every start
    otherwise, for the same result."""
    try:
        import openvino as ov

        network = int8_weights_network(onnx_file)
        if network is None:
            return None
        return ov.Core().compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                         "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1})
    except Exception as exc:  # noqa: BLE001 - an optimisation: the main network still serves every batch
        log.warning("int8-weight network for small batches not built (%s): small batches run the main one", exc)
        return None


def int8_weights_network(onnx_file: Path) -> Any:
    """``nncf.compress_weights`` of ``onnx_file`` as an OpenVINO model, from the cache under
    ``$SEARCHTUNE_HOME/cache/openvino`` when there (keyed by the ONNX file's path, size and mtime; written to a
    temporary folder and renamed, so a half-written cache is never read). None when nncf is missing."""
    import openvino as ov

    stat = onnx_file.stat()
    key = hashlib.sha256(f"{onnx_file.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:20]
    cache = searchtune_home() / "cache" / "openvino" / key
    if (cache / "model.xml").is_file():
        return ov.Core().read_model(str(cache / "model.xml"))
    try:
        import nncf
    except ImportError:
        log.info("nncf is not installed: small batches run the main OpenVINO network")
        return None
    compressed = nncf.compress_weights(ov.Core().read_model(str(onnx_file)))
    tmp = cache.parent / f".{key}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.mkdir(parents=True)
        ov.save_model(compressed, str(tmp / "model.xml"), compress_to_fp16=False)
        os.replace(tmp, cache)
    except OSError as exc:  # another process won the rename, or the cache is read-only: serve all the same
        log.debug("int8-weight network not cached (%s)", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return compressed


def load_openvino_backend(path: str, kind: ModelKind, precision: str = "auto", max_length: int = 512,
                          card: ModelCard | None = None) -> OpenVinoBackend:
    if not openvino_available():
        raise BackendError("--backend openvino needs the openvino package (pip install openvino)")
    chosen = resolve_ov_precision(precision)
    folder, file_name = export_onnx(path, kind, None)
    scorer = load_scorer(path, kind=kind, precision="fp32", device="cpu", max_length=max_length)
    compiled = compile_network(folder / file_name, chosen)
    backend = OpenVinoBackend(kind=kind, backend="openvino", precision=chosen, device="cpu",
                              max_length=scorer.max_length, path=path, model=scorer.model,
                              hf_tokenizer=scorer.model.tokenizer, card=card or ModelCard())
    backend.source = folder / file_name
    small = compile_small_batch_network(backend.source) if kind == "embedding" and SMALL_INT8_WEIGHTS else None
    backend.attach(compiled, small)
    log.info("OpenVINO %s: %d stream(s), %s threads%s", chosen, backend.streams,
             compiled.get_property("INFERENCE_NUM_THREADS"),
             f"; batches under {SMALL_BATCH_TOKENS} tokens on int8 weights" if small is not None else "")
    return backend
