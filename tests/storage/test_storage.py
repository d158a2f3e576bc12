"""The storage layer on real filesystems (local disk, fsspec's memory store) and real processes: atomic writes leave
the old content on failure, checksums catch corruption, and a lock whose holder was SIGKILLed is taken over in
seconds, including the lock of a real `searchtune models register` killed mid-copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fsspec
import pytest

from searchtune.registry import ModelRegistry
from searchtune.storage import (ChecksumError, LockTimeout, StoreLock, atomic_write, atomic_write_json,
                                atomic_writer, sha256_file, verify_file)


def test_atomic_write_replaces_whole_and_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.json"
    atomic_write_json(target, {"v": 1})
    assert json.loads(target.read_text()) == {"v": 1}
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as handle:
            handle.write('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_write_goes_to_fsspec_uris() -> None:
    atomic_write("memory://storage-test/a/b.txt", "hello")
    assert fsspec.filesystem("memory").cat_file("/storage-test/a/b.txt") == b"hello"


def test_verify_file_names_the_file_and_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 100)
    digest = sha256_file(path)
    verify_file(path, 100, digest)
    path.write_bytes(b"y" * 100)
    with pytest.raises(ChecksumError, match=r"w\.bin: sha256 .* does not match"):
        verify_file(path, 100, digest)
    with pytest.raises(ChecksumError, match="missing"):
        verify_file(tmp_path / "gone.bin", 1, digest)


def test_a_live_lock_excludes_and_release_checks_the_token(tmp_path: Path) -> None:
    fs = fsspec.filesystem("file")
    path = str(tmp_path / ".lock")
    with StoreLock(fs, path, heartbeat_s=0.2) as held:
        record = json.loads(Path(path).read_text())
        assert record["pid"] == os.getpid() and record["token"] == held.token and record["host"]
        time.sleep(0.6)
        assert json.loads(Path(path).read_text())["heartbeat"] > record["heartbeat"]  # the heartbeat runs
        with pytest.raises(LockTimeout, match="held by pid"):
            StoreLock(fs, path, timeout=0.5).acquire()
        other = StoreLock(fs, path)
        other.release()  # not ours: must not delete the holder's lock
        assert Path(path).exists()
    assert not Path(path).exists()


def test_a_stale_heartbeat_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    path.write_text(json.dumps({"token": "t", "pid": 1, "host": "another-machine", "heartbeat": time.time() - 60}))
    started = time.monotonic()
    with StoreLock(fsspec.filesystem("file"), str(path), stale_after_s=10):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert time.monotonic() - started < 5


def test_the_lock_of_a_sigkilled_holder_is_taken_over_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fsspec, time
        from searchtune.storage import StoreLock
        StoreLock(fsspec.filesystem("file"), {str(path)!r}).acquire()
        print("held", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert json.loads(path.read_text())["pid"] == holder.pid  # the dead holder's lock is still there
    started = time.monotonic()
    with StoreLock(fsspec.filesystem("file"), str(path), timeout=30, stale_after_s=300):
        pass  # the pid is gone on this host: no need to wait for the heartbeat to go stale
    assert time.monotonic() - started < 3


def test_a_sigkilled_models_register_leaves_nothing_and_the_next_one_succeeds(tmp_path: Path) -> None:
    """SIGKILL a real `searchtune models register` while it copies a large file into staging, then register again:
    no version appears from the killed run, its staging folder is removed, the next run gets the lock at once."""
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    with open(source / "weights.bin", "wb") as handle:  # big enough that the copy is still running when killed
        for _ in range(48):
            handle.write(os.urandom(8 << 20))
    store = tmp_path / "store"
    cli = Path(sys.executable).with_name("searchtune")
    env = {**os.environ, "SEARCHTUNE_HOME": str(tmp_path / "home")}
    killed = subprocess.Popen([str(cli), "models", "register", "big", str(source), "--store", str(store)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = store / "models" / "big" / ".staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(staging.glob("*/weights.bin")):
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    assert any(staging.glob("*/weights.bin")), "the registration was killed before it started copying"
    registry = ModelRegistry(str(store), cache_dir=tmp_path / "cache")
    assert registry.list() == []  # the killed run registered nothing

    small = tmp_path / "small"
    small.mkdir()
    (small / "config.json").write_text('{"small": true}')
    started = time.monotonic()
    done = subprocess.run([str(cli), "models", "register", "big", str(small), "--store", str(store)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    assert registry.list()[0]["versions"] == [1]
    assert list(staging.iterdir()) == []  # the killed run's staging is gone
    assert sorted(p.name for p in (store / "models" / "big" / "versions").iterdir()) == ["1"]
    assert registry.resolve("big@1").joinpath("config.json").read_text() == '{"small": true}'


def test_a_registration_killed_under_the_lock_leaves_no_orphan_version(tmp_path: Path) -> None:
    """The `models register SIGKILLed while holding the lock` case: killed after moving its files into
    ``versions/1`` but before the index named them. The next registration takes the lock over at once, removes the
    orphan folder and never reuses its number."""
    store = tmp_path / "store"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from searchtune.registry import ModelRegistry
        registry = ModelRegistry({str(store)!r})
        with registry._locked("big"):
            registry.fs.makedirs({str(store / "models" / "big" / "versions" / "1")!r}, exist_ok=True)
            open({str(store / "models" / "big" / "versions" / "1" / "weights.bin")!r}, "wb").write(b"x" * 4096)
            print("moved", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "moved"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    registry = ModelRegistry(str(store), cache_dir=tmp_path / "cache")
    started = time.monotonic()
    version = registry.register("big", str(source))
    assert time.monotonic() - started < 5
    assert version == 2  # 1 was seen on disk: a number always means the same files
    versions = sorted(p.name for p in (store / "models" / "big" / "versions").iterdir())
    assert versions == ["2"]  # the orphan is gone
    assert registry.list()[0]["versions"] == [2]
