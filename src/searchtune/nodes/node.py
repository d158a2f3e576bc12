"""Run a real single-node search engine (Elasticsearch or OpenSearch) from its Maven Central distribution.

Why this exists: tests, the quickstart and benchmarks need a real cluster, and a fresh machine has nothing but a JDK
and Maven. The distribution is fetched with Maven's own client (``mvn dependency:copy``, so mirrors and proxies in
the user's ``settings.xml`` apply), unpacked once into a cache, and started as a background daemon with its own
config, data and log folders. Both engines refuse to run as root, so under root the node runs as an unprivileged
system user that is created on first use.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from searchtune.config import searchtune_home
from searchtune.nodes.java import find_java_home
from searchtune.subprocesses import port_in_use

log = logging.getLogger(__name__)

SERVICE_USER = os.environ.get("SEARCHTUNE_SERVICE_USER", "searchtune")


class NodeError(RuntimeError):
    """The node could not be installed, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Distribution:
    """What differs between engines: coordinates, launcher, env var names and required settings."""

    product: str
    group_id: str
    artifact_id: str
    version: str
    conf_env: str
    java_home_env: str
    java_opts_env: str
    min_java: int
    settings: dict[str, object] = field(default_factory=dict)
    #: Newest JDK the engine runs on (``None``: no cap).
    max_java: int | None = None
    #: Plugin zips (Maven coordinates ``G:A:V:zip``) installed, in order, with ``bin/<plugin_tool> install --batch``.
    plugins: tuple[str, ...] = ()
    plugin_tool: str = ""
    #: Called with the unpacked home before plugins are installed (e.g. to add modules the zip lacks).
    prepare: Callable[[Path], None] | None = None
    #: Called with (config folder, node folder) after the node's config is written (e.g. to fix relative paths).
    configure: Callable[[Path, Path], None] | None = None
    #: Distinguishes cached installs of the same version with different plugin sets.
    flavor: str = ""

    @property
    def coordinates(self) -> str:
        return f"{self.group_id}:{self.artifact_id}:{self.version}:zip"


def maven_executable() -> str:
    """Path of ``mvn``: every artifact comes through Maven's own client so users' mirrors and proxies apply."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError("Maven ('mvn') is required to fetch the distribution; install it (apt-get install maven) "
                        "or point --es-url at an existing cluster")
    return mvn


def fetch_artifact(coordinates: str, out_dir: Path) -> Path:
    """Copy one artifact (``G:A:V[:type]``) from Maven (local repository first, then the remotes) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    cmd = [maven_executable(), "-B", "-q", "dependency:copy", f"-Dartifact={coordinates}",
           f"-DoutputDirectory={out_dir}", "-Dmdep.overWriteReleases=true"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=out_dir)
    new = [p for p in out_dir.iterdir() if p not in before and p.is_file()]
    if result.returncode != 0 or not new:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise NodeError(f"could not fetch {coordinates} with Maven (exit {result.returncode}):\n{tail}")
    return new[0]


def nodes_root() -> Path:
    """Where distributions and node folders live. Under root, ``/root`` is not traversable by the service user,
    so a system location is used instead (``SEARCHTUNE_NODES_DIR`` overrides both)."""
    explicit = os.environ.get("SEARCHTUNE_NODES_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/searchtune/nodes")
    return searchtune_home() / "nodes"


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise NodeError(f"could not create the system user '{SERVICE_USER}' ({' '.join(cmd)}): {result.stderr.strip()}")
    return pwd.getpwnam(SERVICE_USER)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _extract_zip(archive: Path, target: Path) -> None:
    """Unzip keeping the Unix permission bits (zipfile drops them; the launch scripts must stay executable)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)


class ManagedNode:
    """One named local node: ``install`` (cached), ``start`` (idempotent), ``stop``, ``status``."""

    def __init__(self, dist: Distribution, name: str = "default", port: int = 9200, heap: str = "1g",
                 root: Path | None = None):
        self.dist = dist
        self.name = name
        self.port = port
        self.heap = heap
        self.root = root or nodes_root()
        self.node_dir = self.root / dist.product / name
        self.pid_file = self.node_dir / "node.pid"
        self.url = f"http://127.0.0.1:{port}"

    # ------------------------------------------------------------------ install
    @property
    def dist_dir(self) -> Path:
        suffix = f"-{self.dist.flavor}" if self.dist.flavor else ""
        return self.root / "dist" / f"{self.dist.product}-{self.dist.version}{suffix}"

    def install(self) -> Path:
        """Fetch and unpack the distribution once; later calls reuse the cache."""
        marker = self.dist_dir / ".complete"
        if marker.is_file():
            return self._home()
        self.dist_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.dist_dir.parent) as tmp:
            log.info("fetching %s with Maven", self.dist.coordinates)
            archive = fetch_artifact(self.dist.coordinates, Path(tmp, "zip"))
            staging = Path(tmp, "unpacked")
            _extract_zip(archive, staging)
            homes = [p for p in staging.iterdir() if p.is_dir() and (p / "bin").is_dir()]
            if not homes:
                raise NodeError(f"{self.dist.coordinates} holds no {self.dist.product} distribution (no bin/ folder)")
            if self.dist.prepare is not None:
                self.dist.prepare(homes[0])
            for coordinates in self.dist.plugins:
                self._install_plugin(homes[0], coordinates, Path(tmp, "plugins"))
            (staging / ".complete").write_text("\n".join([self.dist.coordinates, *self.dist.plugins]) + "\n")
            if self.dist_dir.exists():
                shutil.rmtree(self.dist_dir)
            os.rename(staging, self.dist_dir)
        self.dist_dir.chmod(0o755)
        return self._home()

    def _install_plugin(self, home: Path, coordinates: str, download_dir: Path) -> None:
        """Fetch a plugin zip with Maven and install it offline with the engine's own plugin tool."""
        log.info("installing plugin %s", coordinates)
        archive = fetch_artifact(coordinates, download_dir)
        java_home = find_java_home(self.dist.min_java, self.dist.max_java)
        env = {**os.environ, "JAVA_HOME": str(java_home), self.dist.java_home_env: str(java_home),
               self.dist.conf_env: str(home / "config")}
        tool = home / "bin" / (self.dist.plugin_tool or f"{self.dist.product}-plugin")
        result = subprocess.run([str(tool), "install", "--batch", archive.resolve().as_uri()], capture_output=True,
                                text=True, env=env, timeout=900)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise NodeError(f"installing plugin {coordinates} failed (exit {result.returncode}):\n{tail}")

    def _home(self) -> Path:
        homes = [p for p in self.dist_dir.iterdir() if p.is_dir() and (p / "bin").is_dir()]
        if not homes:
            raise NodeError(f"{self.dist_dir} holds no {self.dist.product} distribution; delete it and retry")
        return homes[0]

    # ------------------------------------------------------------------ status
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            response = httpx.get(f"{self.url}/_cluster/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json().get("status") in ("green", "yellow")

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {"product": self.dist.product, "version": self.dist.version, "name": self.name, "url": self.url,
                "pid": pid, "running": pid is not None, "healthy": pid is not None and self.healthy(),
                "node_dir": str(self.node_dir)}

    # ------------------------------------------------------------------ start / stop
    def _write_config(self, home: Path) -> Path:
        conf = self.node_dir / "config"
        if not (conf / "jvm.options").is_file():
            shutil.copytree(home / "config", conf, dirs_exist_ok=True)
        for sub in ("data", "logs"):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        settings: dict[str, object] = {
            "cluster.name": f"searchtune-{self.name}",
            "node.name": f"searchtune-{self.name}",
            "path.data": str(self.node_dir / "data"),
            "path.logs": str(self.node_dir / "logs"),
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.port + 100,
            "discovery.type": "single-node",
            "action.destructive_requires_name": False,
            "cluster.routing.allocation.disk.watermark.low": "97%",
            "cluster.routing.allocation.disk.watermark.high": "98%",
            "cluster.routing.allocation.disk.watermark.flood_stage": "99%",
            **self.dist.settings,
        }
        lines = [f"{key}: {str(value).lower() if isinstance(value, bool) else value}" for key, value in settings.items()]
        (conf / f"{self.dist.product}.yml").write_text("\n".join(lines) + "\n")
        (conf / "jvm.options.d").mkdir(exist_ok=True)
        (conf / "jvm.options.d" / "searchtune-heap.options").write_text(f"-Xms{self.heap}\n-Xmx{self.heap}\n")
        if self.dist.configure is not None:
            self.dist.configure(conf, self.node_dir)
        return conf

    def start(self, timeout: float = 180.0) -> str:
        """Start the node unless it already runs; return its URL once cluster health is yellow or green."""
        if self.pid() is not None:
            if self._wait_healthy(timeout, self.pid()):
                log.info("%s '%s' already running at %s", self.dist.product, self.name, self.url)
                return self.url
            raise NodeError(f"{self.dist.product} '{self.name}' runs (pid {self.pid()}) but is not healthy at {self.url}")
        if self.healthy():
            raise NodeError(f"port {self.port} already answers as a cluster not managed here; use --es-url {self.url} "
                            "to use it, or choose another --port")
        for port, what in ((self.port, "HTTP port"), (self.port + 100, "transport port (HTTP port + 100)")):
            if port_in_use(port):  # else a BindException deep in the node's log, after a long wait
                raise NodeError(f"port {port} ({what} of {self.dist.product} '{self.name}') is already in use by "
                                "another program: stop it, or choose another port")
        java_home = find_java_home(self.dist.min_java, self.dist.max_java)
        home = self.install()
        self.node_dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config(home)
        self.pid_file.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.node_dir),
            self.dist.conf_env: str(conf),
            self.dist.java_home_env: str(java_home),
            "JAVA_HOME": str(java_home),
            self.dist.java_opts_env: os.environ.get(self.dist.java_opts_env, ""),
            "LANG": "C.UTF-8",
        }
        launcher = [str(home / "bin" / self.dist.product), "-d", "-p", str(self.pid_file)]
        if os.geteuid() == 0:
            user = _ensure_service_user()
            for path in (self.root, self.root / self.dist.product, self.dist_dir.parent):
                path.chmod(0o755)
            _chown_tree(self.node_dir, user.pw_uid, user.pw_gid)
            command = ["runuser", "-u", SERVICE_USER, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *launcher]
        else:
            command = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], *launcher]
        log.info("starting %s %s '%s' on %s (heap %s, java %s)", self.dist.product, self.dist.version, self.name,
                 self.url, self.heap, java_home)
        startup_log = self.node_dir / "logs" / "startup.out"
        with open(startup_log, "ab") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.node_dir, timeout=timeout)
        if result.returncode != 0:
            raise NodeError(f"{self.dist.product} failed to start (exit {result.returncode}); last log lines:\n"
                            + self._log_tail())
        if not self._wait_healthy(timeout, None):
            self.stop()
            raise NodeError(f"{self.dist.product} did not become healthy within {timeout:.0f}s; last log lines:\n"
                            + self._log_tail())
        return self.url

    def _wait_healthy(self, timeout: float, pid: int | None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            if self.pid_file.exists() and self.pid() is None:
                return False
            time.sleep(1.0)
        return False

    def _log_tail(self, lines: int = 25) -> str:
        logs = sorted((self.node_dir / "logs").glob("*"), key=lambda p: p.stat().st_mtime)
        text = []
        for path in logs[-2:]:
            try:
                text.extend(path.read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                continue
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the node and wait for the JVM to exit; ``False`` when nothing was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.5)
        if _alive(pid):
            log.warning("%s pid %d ignored SIGTERM for %.0fs; killing it", self.dist.product, pid, timeout)
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False
