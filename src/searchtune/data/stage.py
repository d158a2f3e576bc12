"""Stage a dataset to any fsspec store (local folder, ``s3://``, ``oss://``) so other machines and jobs can use it.

Layout at the target URI: the dataset's files under their relative paths, plus ``manifest.json`` (schema version,
name, source, creation time, counts, and every file's size and sha256). The manifest is written **last** (one PUT on
object stores, a rename on local disk), so an upload that dies halfway leaves files but no manifest, and readers
treat a folder without a manifest as "not a dataset". Re-staging over a dataset removes the old manifest first.
:func:`open_staged` refuses a dataset without a manifest and checks every file's sha256 before returning a path.

Where ``uri`` is a bare name (``my-judgments``) it goes to the default store: ``$SEARCHTUNE_STORE/datasets/NAME``
(default ``~/.searchtune/store``). S3-compatible stores (AWS, MinIO, OSS's S3 endpoint) take ``endpoint_url`` from
the ``--endpoint-url`` option, ``SEARCHTUNE_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``; credentials come from the
usual AWS variables/profiles (``OSS_ACCESS_KEY_ID``/``OSS_ACCESS_KEY_SECRET``/``OSS_ENDPOINT`` for ``oss://``).
Missing credentials, an unreachable endpoint or a missing bucket raise :class:`StageError` with one clear line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec

from searchtune import __version__
from searchtune.config import searchtune_home, store_uri
from searchtune.storage import ChecksumError, atomic_write, is_local, sha256_file, verify_file

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: Connection settings for object stores: fail fast on a dead endpoint, retry transient faults a little.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


class StageError(RuntimeError):
    """Staging or reading a staged dataset failed for a reason the user can fix; the message is one line."""


@dataclass
class ManifestFile:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    name: str
    source: str
    layout: str
    entry: str  #: "." for a folder dataset, else the staged file's name
    files: list[ManifestFile]
    counts: dict
    schema_version: int = SCHEMA_VERSION
    created: str = ""
    searchtune_version: str = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, where: str) -> "Manifest":
        try:
            data = json.loads(text)
            version = int(data["schema_version"])
            if version > SCHEMA_VERSION:
                raise StageError(f"{where}: manifest schema version {version} is newer than this searchtune "
                                 f"understands ({SCHEMA_VERSION}); upgrade searchtune")
            files = [ManifestFile(path=str(f["path"]), size=int(f["size"]), sha256=str(f["sha256"]))
                     for f in data["files"]]
            return cls(name=str(data["name"]), source=str(data.get("source", "")), layout=str(data["layout"]),
                       entry=str(data.get("entry", ".")), files=files, counts=dict(data.get("counts", {})),
                       schema_version=version, created=str(data.get("created", "")),
                       searchtune_version=str(data.get("searchtune_version", "")))
        except StageError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise StageError(f"{where}: manifest is not valid ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- where things go


def resolve_uri(target: str, store: str | None = None) -> str:
    """A bare name goes to ``<store>/datasets/<name>``; URIs and paths are used as given (``~`` expanded)."""
    if "://" in target:
        return target.rstrip("/")
    if "/" in target or target.startswith((".", "~")) or os.sep in target:
        return str(Path(target).expanduser().absolute())
    base = (store or store_uri()).rstrip("/")
    if "://" not in base:
        base = str(Path(base).expanduser().absolute())
    return f"{base}/datasets/{target}"


def storage_options_for(uri: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """fsspec options for ``uri``'s protocol, from arguments and the environment."""
    protocol = uri.split("://", 1)[0] if "://" in uri else "file"
    if protocol in ("s3", "s3a"):
        endpoint = endpoint_url or os.environ.get("SEARCHTUNE_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {"config_kwargs": dict(S3_CONFIG)}
        if endpoint:
            options["endpoint_url"] = endpoint
        if os.environ.get("SEARCHTUNE_S3_ANON", "").lower() in ("1", "true", "yes"):
            options["anon"] = True  # public buckets: read without credentials
        return options
    if protocol == "oss":
        try:
            import ossfs  # noqa: F401
        except ImportError:
            raise StageError("oss:// needs the ossfs package: pip install 'searchtune[oss]' (or use OSS's S3-compatible "
                             "endpoint with s3:// and --endpoint-url)") from None
        options = {}
        endpoint = endpoint_url or os.environ.get("OSS_ENDPOINT")
        if endpoint:
            options["endpoint"] = endpoint
        if os.environ.get("OSS_ACCESS_KEY_ID"):
            options["key"] = os.environ["OSS_ACCESS_KEY_ID"]
            options["secret"] = os.environ.get("OSS_ACCESS_KEY_SECRET", "")
        return options
    return {}


def _check_s3_credentials(uri: str, options: dict) -> None:
    """s3fs silently falls back to unsigned requests when it finds no credentials, which then fail (or worse,
    succeed against a permissive test server) far from the cause; say what is missing up front instead."""
    if options.get("anon") or options.get("key") or options.get("session"):
        return
    import botocore.exceptions
    import botocore.session

    try:
        credentials = botocore.session.Session(profile=options.get("profile")).get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise StageError(f"no usable credentials for {uri}: {exc}") from None
    if credentials is None:
        raise StageError(f"no credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                         "(SEARCHTUNE_S3_ANON=1 reads public buckets without credentials)")


def _filesystem(uri: str, storage_options: dict | None) -> tuple[fsspec.AbstractFileSystem, str]:
    options = storage_options if storage_options is not None else storage_options_for(uri)
    if uri.startswith(("s3://", "s3a://")):
        _check_s3_credentials(uri, options)
    try:
        fs, root = fsspec.core.url_to_fs(uri, **options)
    except ImportError as exc:
        raise StageError(f"no filesystem for {uri}: {exc}") from None
    except ValueError as exc:
        raise StageError(f"cannot use {uri}: {exc}") from None
    fs.invalidate_cache()  # fsspec reuses instances: never decide "is there a manifest?" from a stale listing
    return fs, root.rstrip("/")


@contextmanager
def _store_errors(uri: str, endpoint: str | None = None) -> Iterator[None]:
    """Turn the many ways object stores fail into one line that says what to do."""
    try:
        yield
    except StageError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified below, re-raised as-is when unknown
        message = _classify(exc, uri, endpoint)
        if message is None:
            raise
        raise StageError(message) from None


def _classify(exc: BaseException, uri: str, endpoint: str | None) -> str | None:
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = f" ({endpoint})" if endpoint else ""
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "ProfileNotFound"}:
        return (f"no usable credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                f"(OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET for oss://) ({text})")
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ClientConnectorError",
                "ServerDisconnectedError", "ClientOSError", "ConnectionError", "ConnectionRefusedError",
                "TimeoutError", "ReadTimeoutError"}:
        return f"cannot reach the store for {uri}{where}: {text}"
    if isinstance(exc, PermissionError):
        return f"access denied to {uri}{where}: {text} (check the credentials and the bucket's policy)"
    if isinstance(exc, FileNotFoundError):
        return f"not found: {uri}{where} ({text}); does the bucket exist?"
    if isinstance(exc, OSError) and "://" in uri:
        return f"store error for {uri}{where}: {text}"
    return None


# ---------------------------------------------------------------- staging


def _source_files(src: Path) -> list[tuple[str, Path]]:
    """(relative posix path, local path) of every file to stage; hidden files and mining checkpoints are skipped."""
    if src.is_file():
        return [(src.name, src)]
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts) or path.suffix == ".ckpt":
            continue
        files.append((rel.as_posix(), path))
    return files


def stage_dataset(src_path: str | Path, uri: str, *, overwrite: bool = False, name: str | None = None,
                  storage_options: dict | None = None, endpoint_url: str | None = None,
                  on_progress: Callable[[int], None] | None = None) -> Manifest:
    """Validate ``src_path`` (a dataset folder or a pairs/triplets file), copy it to ``uri``, write the manifest last.

    ``on_progress(n_bytes)`` is called after each file. Invalid data is refused before anything is uploaded.
    """
    from searchtune.data.validate import validate_path

    src = Path(src_path).expanduser().absolute()
    if not src.exists():
        raise StageError(f"{src}: no such file or folder")
    report = validate_path(src)
    if not report.ok:
        raise StageError(f"refusing to stage invalid data: {report.errors[0]}")
    uri = resolve_uri(uri)
    options = storage_options if storage_options is not None else storage_options_for(uri, endpoint_url)
    endpoint = options.get("endpoint_url") or options.get("endpoint")
    files = _source_files(src)
    if not files:
        raise StageError(f"{src}: no files to stage")
    manifest = Manifest(name=name or (src.stem if src.is_file() else report.stats.get("name") or src.name),
                        source=str(src), layout=report.layout, entry=src.name if src.is_file() else ".",
                        files=[ManifestFile(path=rel, size=p.stat().st_size, sha256=sha256_file(p)) for rel, p in files],
                        counts=_counts(report.stats), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    fs, root = _filesystem(uri, options)
    manifest_path = f"{root}/{MANIFEST_NAME}"
    with _store_errors(uri, endpoint):
        if fs.exists(manifest_path):
            if not overwrite:
                raise StageError(f"{uri} already holds a staged dataset; pass --overwrite to replace it")
            fs.rm_file(manifest_path)  # from here on the old copy is no longer a dataset
        if is_local(fs):
            fs.makedirs(root, exist_ok=True)
        for rel, local in files:
            target = f"{root}/{rel}"
            if is_local(fs):
                fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(local), target)
            if on_progress:
                on_progress(local.stat().st_size)
        _write_manifest(fs, root, manifest)
        _remove_stale(fs, root, {f.path for f in manifest.files})
    return manifest


def _counts(stats: dict) -> dict:
    if "splits" in stats:
        return {"documents": stats["documents"], "queries": stats["queries"],
                "splits": {s: {"queries": v["queries"], "judged_pairs": v["judged_pairs"]}
                           for s, v in stats["splits"].items()}}
    return {k: stats[k] for k in ("pairs", "triplets", "queries", "documents") if k in stats}


def _write_manifest(fs: fsspec.AbstractFileSystem, root: str, manifest: Manifest) -> None:
    """Last, and whole (storage.atomic_write: a rename locally, one PUT on object stores)."""
    atomic_write(f"{root}/{MANIFEST_NAME}", manifest.to_json(), fs=fs)


def _remove_stale(fs: fsspec.AbstractFileSystem, root: str, keep: set[str]) -> None:
    """Delete files a previous version left that the new manifest does not list."""
    try:
        existing = fs.find(root)
    except FileNotFoundError:
        return
    prefix = root.rstrip("/") + "/"
    for path in existing:
        rel = path[len(prefix):] if path.startswith(prefix) else path
        if rel != MANIFEST_NAME and rel not in keep and not rel.split("/")[-1].startswith("."):
            fs.rm_file(path)


# ---------------------------------------------------------------- reading


def read_manifest(uri: str, storage_options: dict | None = None, endpoint_url: str | None = None) -> Manifest:
    """The manifest of a staged dataset; a URI without one is refused (nothing, or an unfinished upload)."""
    uri = resolve_uri(uri)
    options = storage_options if storage_options is not None else storage_options_for(uri, endpoint_url)
    fs, root = _filesystem(uri, options)
    with _store_errors(uri, options.get("endpoint_url") or options.get("endpoint")):
        try:
            text = fs.cat_file(f"{root}/{MANIFEST_NAME}").decode("utf-8")
        except FileNotFoundError:
            raise StageError(f"{uri} is not a staged dataset: no {MANIFEST_NAME} (nothing there, or an upload that "
                             "did not finish)") from None
    return Manifest.from_json(text, f"{uri}/{MANIFEST_NAME}")


def _verify_local(folder: Path, manifest: Manifest, uri: str) -> None:
    for entry in manifest.files:
        try:
            verify_file(folder / entry.path, entry.size, entry.sha256, where=f"{uri}/{entry.path}")
        except ChecksumError as exc:
            raise StageError(str(exc)) from None


def open_staged(uri: str, cache_dir: str | Path | None = None, storage_options: dict | None = None,
                endpoint_url: str | None = None) -> Path:
    """A verified local path to a staged dataset: the folder (or the single staged file).

    Local stores are verified in place. Remote ones are downloaded into a cache folder keyed by the URI and the
    manifest's checksums (``$SEARCHTUNE_HOME/cache/staged``), verified, then moved into place, so a cached copy is
    always complete; a later call with an unchanged manifest re-verifies the cache instead of downloading.
    """
    uri = resolve_uri(uri)
    options = storage_options if storage_options is not None else storage_options_for(uri, endpoint_url)
    manifest = read_manifest(uri, storage_options=options)
    fs, root = _filesystem(uri, options)
    if is_local(fs):
        folder = Path(root)
    else:
        key = hashlib.sha256((uri + "\n" + "".join(f.sha256 for f in manifest.files)).encode()).hexdigest()[:24]
        cache = Path(cache_dir).expanduser() if cache_dir else searchtune_home() / "cache" / "staged"
        folder = cache / f"{manifest.name}-{key}"
        if not folder.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache))
            try:
                with _store_errors(uri, options.get("endpoint_url") or options.get("endpoint")):
                    for entry in manifest.files:
                        (tmp / entry.path).parent.mkdir(parents=True, exist_ok=True)
                        try:
                            fs.get_file(f"{root}/{entry.path}", str(tmp / entry.path))
                        except FileNotFoundError:
                            raise StageError(f"{uri}/{entry.path}: listed in the manifest but missing") from None
                _verify_local(tmp, manifest, uri)
                try:
                    tmp.rename(folder)
                except OSError:  # another process finished the same download first
                    shutil.rmtree(tmp, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    _verify_local(folder, manifest, uri)
    return folder / manifest.entry if manifest.entry != "." else folder


def list_staged(base_uri: str | None = None, storage_options: dict | None = None) -> list[tuple[str, Manifest]]:
    """Datasets under ``base_uri`` (default: the store's ``datasets/``): only folders with a manifest count."""
    base = (base_uri or resolve_uri("x").rsplit("/", 1)[0]).rstrip("/")
    options = storage_options if storage_options is not None else storage_options_for(base)
    fs, root = _filesystem(base, options)
    scheme = base.split("://", 1)[0] + "://" if "://" in base else ""
    found: list[tuple[str, Manifest]] = []
    with _store_errors(base, options.get("endpoint_url")):
        try:
            paths = fs.glob(f"{root}/*/{MANIFEST_NAME}")
        except FileNotFoundError:
            return []
        for path in sorted(paths):
            folder = path.rsplit("/", 1)[0]
            uri = f"{scheme}{folder}" if scheme else folder
            found.append((uri, Manifest.from_json(fs.cat_file(path).decode("utf-8"), f"{uri}/{MANIFEST_NAME}")))
    return found
