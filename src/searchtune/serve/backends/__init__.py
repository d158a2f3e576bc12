"""Inference backends behind one small interface, so the batcher and routes never care which runtime scores."""

from searchtune.serve.backends.base import Backend, BackendError, choose_backend, load_backend

__all__ = ["Backend", "BackendError", "choose_backend", "load_backend"]
