"""ONNX Runtime backend with dynamic int8 quantization.

Export and quantization go through sentence-transformers (``backend="onnx"`` exports with optimum, and
``export_dynamic_quantized_onnx_model`` quantizes with ONNX Runtime's quantizer) - nothing is exported by hand.
Exports are cached under ``$SEARCHTUNE_HOME/cache/onnx/<key>`` keyed by the fingerprint of the model's weights;
registry versions stay untouched (they are immutable) and the cache folder appears atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path

from searchtune.config import searchtune_home
from searchtune.scoring import ModelKind
from searchtune.serve.backends.base import Backend, BackendError
from searchtune.serve.model_card import ModelCard

log = logging.getLogger(__name__)


def quantization_target() -> str:
    """The ONNX Runtime quantization preset matching this CPU (VNNI int8 dot products where available)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    if os.uname().machine in ("aarch64", "arm64"):
        return "arm64"
    return "avx2"


def _cache_key(path: str) -> str:
    """The model's weights fingerprint (vectors/identity.py): a registry version and the training folder it was
    registered from share one export, wherever either lives. Without one (no weight files), the folder's path,
    file sizes and mtimes."""
    from searchtune.vectors.identity import model_fingerprint

    fingerprint = model_fingerprint(path)
    if fingerprint is not None:
        return f"fp-{fingerprint}"
    parts = [str(Path(path).resolve())]
    for name in sorted(os.listdir(path)):
        full = Path(path) / name
        if full.is_file():
            stat = full.stat()
            parts.append(f"{name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _model_class(kind: ModelKind):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    return CrossEncoder if kind == "cross-encoder" else SentenceTransformer


def export_onnx(path: str, kind: ModelKind, quantize: str | None) -> tuple[Path, str]:
    """Return (folder, file_name) of the ONNX model for ``path``, exporting and quantizing once if needed."""
    from sentence_transformers import export_dynamic_quantized_onnx_model

    target = quantization_target()
    file_name = f"onnx/model_qint8_{target}.onnx" if quantize == "int8" else "onnx/model.onnx"
    if (Path(path) / file_name).is_file():  # shipped with the model already
        return Path(path), file_name
    cache = searchtune_home() / "cache" / "onnx" / _cache_key(path)
    if (cache / file_name).is_file():
        return cache, file_name
    tmp = cache.parent / f".{cache.name}.{uuid.uuid4().hex}.tmp"
    log.info("exporting %s to ONNX (%s) in %s", path, quantize or "fp32", cache)
    try:
        cls = _model_class(kind)
        source = cache if (cache / "onnx" / "model.onnx").is_file() else path
        model = cls(str(source), backend="onnx", **({"model_kwargs": {"file_name": "onnx/model.onnx"}}
                                                   if source == cache else {}))
        model.save_pretrained(str(tmp))
        if quantize == "int8":
            export_dynamic_quantized_onnx_model(model, target, str(tmp))
    except Exception as exc:  # optimum/onnx failures arrive as many types
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackendError(f"ONNX export of {path} failed: {exc}") from exc
    if cache.exists():  # another process finished first, or an fp32-only export is being upgraded
        for f in (tmp / "onnx").iterdir():
            dest = cache / "onnx" / f.name
            if not dest.exists():
                os.replace(f, dest)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            os.replace(tmp, cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return cache, file_name


class OnnxBackend(Backend):
    """Runs the ONNX Runtime session that sentence-transformers wraps, on the same padded id batches as torch."""


def load_onnx_backend(path: str, kind: ModelKind, quantize: str | None = None, max_length: int = 512,
                      card: ModelCard | None = None) -> OnnxBackend:
    folder, file_name = export_onnx(path, kind, quantize)
    cls = _model_class(kind)
    kwargs = {"model_kwargs": {"file_name": file_name, "provider": "CPUExecutionProvider"}}
    if kind == "cross-encoder":
        model = cls(str(folder), backend="onnx", max_length=max_length, **kwargs)
        limit = int(model.max_length or max_length)
    else:
        model = cls(str(folder), backend="onnx", **kwargs)
        model.max_seq_length = min(max_length, model.max_seq_length or max_length)
        limit = int(model.max_seq_length)
    return OnnxBackend(kind=kind, backend="onnx", precision="int8" if quantize == "int8" else "fp32", device="cpu",
                       max_length=limit, path=path, model=model, hf_tokenizer=model.tokenizer,
                       card=card or ModelCard())

