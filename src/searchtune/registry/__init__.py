"""Versioned model registry on an fsspec store: register, promote/rollback aliases, resolve for serving."""

from searchtune.registry.registry import ModelRef, ModelRegistry, RegistryError, resolve_model_ref

__all__ = ["ModelRef", "ModelRegistry", "RegistryError", "resolve_model_ref"]
