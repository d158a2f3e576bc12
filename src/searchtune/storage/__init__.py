"""One storage layer for everything searchtune keeps: fsspec URIs (local folders, ``s3://``, ``oss://``,
``memory://``), atomic writes (unique temporary name, fsync, rename), sha256 manifests checked on read, and locks
that a crashed holder cannot keep forever. Data staging, the model registry, eval and report writers, training output
and the gateway's files all go through it, so "written" means the same thing everywhere: whole or not at all."""

from searchtune.storage.atomic import atomic_write, atomic_write_json, atomic_writer
from searchtune.storage.checksums import ChecksumError, sha256_bytes, sha256_file, verify_file
from searchtune.storage.fs import filesystem, is_local
from searchtune.storage.lock import LockTimeout, StoreLock

__all__ = ["ChecksumError", "LockTimeout", "StoreLock", "atomic_write", "atomic_write_json", "atomic_writer",
           "filesystem", "is_local", "sha256_bytes", "sha256_file", "verify_file"]
