"""Find a JDK new enough for the search engine we are about to start."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


class JavaNotFoundError(RuntimeError):
    pass


def java_major_version(java_home: Path) -> int | None:
    """Major version of ``java_home/bin/java`` (``None`` when it is not a working JDK)."""
    binary = java_home / "bin" / "java"
    if not binary.is_file():
        return None
    try:
        out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java_home(min_version: int = 21, max_version: int | None = None) -> Path:
    """``JAVA_HOME`` if it is new enough, else the newest JDK under ``/usr/lib/jvm``.

    ``max_version`` caps the choice for engines that break on newer JDKs (OpenSearch 2.x needs the Security
    Manager, which Java 24 removed)."""

    def fits(version: int | None) -> bool:
        return version is not None and version >= min_version and (max_version is None or version <= max_version)

    checked: list[str] = []
    env_home = os.environ.get("JAVA_HOME")
    if env_home:
        version = java_major_version(Path(env_home))
        if fits(version):
            return Path(env_home)
        checked.append(f"JAVA_HOME={env_home} (Java {version or 'unknown'})")
    candidates: list[tuple[int, Path]] = []
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        for home in sorted(jvm_root.iterdir()):
            if home.is_symlink():
                continue
            version = java_major_version(home)
            if version is not None:
                candidates.append((version, home))
                checked.append(f"{home} (Java {version})")
    good = sorted((c for c in candidates if fits(c[0])), key=lambda c: c[0], reverse=True)
    if good:
        return good[0][1]
    wanted = f"{min_version}+" if max_version is None else f"{min_version}..{max_version}"
    raise JavaNotFoundError(
        f"Java {wanted} is required and none was found. Checked: {', '.join(checked) or 'nothing'}. "
        f"Install a JDK {min_version}+ (e.g. apt-get install openjdk-21-jdk-headless) and set JAVA_HOME to it."
    )
