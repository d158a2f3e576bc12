"""The OpenSearch node searchtune runs locally: the smallest one that runs the neural-search ``rerank`` processor.

Why it is assembled rather than downloaded whole: only Maven Central is reachable, and it publishes the bare
``integ-test-zip`` distribution plus plugin zips, not the full distribution. The rerank response processor lives in
neural-search, which extends k-NN, which extends the ``lang-painless`` module; ml-commons (the remote connector and
model) extends job-scheduler. lang-painless is published only as a jar (no module zip), so its module folder is built
from that jar and the exact runtime dependencies its POM lists. Versions: neural-search is on Central only as
2.19.1.0 among the lines probed (see docs/opensearch.md), so the whole node is 2.19.1; OpenSearch 2.x needs the Java
Security Manager, which Java 24 removed, hence Java 17..21.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from searchtune.nodes.node import Distribution, ManagedNode, NodeError, maven_executable

log = logging.getLogger(__name__)

#: Core version; plugin versions are this plus ``.0`` (OpenSearch's four-part plugin versions).
OPENSEARCH_VERSION = os.environ.get("SEARCHTUNE_OS_VERSION", "2.19.1")
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"

#: Install order follows the extension chain: each plugin's parents must be present first.
OPENSEARCH_PLUGINS: tuple[str, ...] = (
    f"org.opensearch.plugin:opensearch-job-scheduler:{PLUGIN_VERSION}:zip",
    f"org.opensearch.plugin:opensearch-ml-plugin:{PLUGIN_VERSION}:zip",
    f"org.opensearch.plugin:opensearch-knn:{PLUGIN_VERSION}:zip",
    # the zip's artifact id is "neural-search" (its plugin name is "opensearch-neural-search")
    f"org.opensearch.plugin:neural-search:{PLUGIN_VERSION}:zip",
)

#: Regex of connector endpoints ml-commons may call: only this machine.
TRUSTED_ENDPOINTS = [r"^https?://127\.0\.0\.1(:[0-9]+)?/.*", r"^https?://localhost(:[0-9]+)?/.*"]

_PAINLESS_POLICY = """grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";
  // needed to find the classloader to load allowlisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
"""


def install_lang_painless(home: Path, version: str = OPENSEARCH_VERSION) -> Path:
    """Build ``modules/lang-painless`` from the ``org.opensearch.plugin:lang-painless`` jar and its POM's runtime
    dependencies (Central has no module zip for it). Returns the module folder."""
    module = home / "modules" / "lang-painless"
    module.mkdir(parents=True, exist_ok=True)
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>searchtune</groupId><artifactId>lang-painless-module</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>lang-painless</artifactId>
      <version>{version}</version></dependency>
    <!-- declared here only to cut its transitive dependency on the OpenSearch server (already in lib/) -->
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>opensearch-scripting-painless-spi</artifactId>
      <version>{version}</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>
  </dependencies>
</project>
"""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pom.xml").write_text(pom)
        cmd = [maven_executable(), "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={module}",
               "-DincludeScope=runtime"]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    jars = sorted(p.name for p in module.glob("*.jar"))
    if result.returncode != 0 or not any(name.startswith("lang-painless-") for name in jars):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise NodeError(f"could not fetch org.opensearch.plugin:lang-painless:{version} and its dependencies "
                        f"with Maven (exit {result.returncode}):\n{tail}")
    (module / "plugin-descriptor.properties").write_text(
        "description=An easy, safe and fast scripting language for OpenSearch\n"
        f"version={version}\nname=lang-painless\nclassname=org.opensearch.painless.PainlessPlugin\n"
        f"java.version=11\nopensearch.version={version}\nextended.plugins=\nhas.native.controller=false\n"
        "custom.foldername=\n")
    (module / "plugin-security.policy").write_text(_PAINLESS_POLICY)
    log.info("built module lang-painless from %d jars", len(jars))
    return module


def point_jvm_paths_at_node(conf: Path, node_dir: Path) -> None:
    """OpenSearch's launcher runs from the (shared, read-only) install folder, so the GC log, heap dumps and crash
    files that ``jvm.options`` names relative to it would be unwritable: point them at this node's folders."""
    options = conf / "jvm.options"
    text = options.read_text()
    text = text.replace("file=logs/", f"file={node_dir / 'logs'}/")
    text = text.replace("-XX:HeapDumpPath=data", f"-XX:HeapDumpPath={node_dir / 'data'}")
    text = text.replace("-XX:ErrorFile=logs/", f"-XX:ErrorFile={node_dir / 'logs'}/")
    text = text.replace("-Xloggc:logs/", f"-Xloggc:{node_dir / 'logs'}/")
    options.write_text(text)


OPENSEARCH = Distribution(
    product="opensearch",
    group_id="org.opensearch.distribution.integ-test-zip",
    artifact_id="opensearch",
    version=OPENSEARCH_VERSION,
    conf_env="OPENSEARCH_PATH_CONF",
    java_home_env="OPENSEARCH_JAVA_HOME",
    java_opts_env="OPENSEARCH_JAVA_OPTS",
    min_java=17,
    max_java=21,
    plugins=OPENSEARCH_PLUGINS,
    plugin_tool="opensearch-plugin",
    prepare=install_lang_painless,
    configure=point_jvm_paths_at_node,
    flavor="ml-rerank",
    settings={
        # the integ-test zip has no security plugin, so there is nothing to switch off
        "plugins.ml_commons.only_run_on_ml_node": False,
        "plugins.ml_commons.connector.private_ip_enabled": True,
        # JSON is valid YAML and keeps the regex backslashes intact
        "plugins.ml_commons.trusted_connector_endpoints_regex": json.dumps(TRUSTED_ENDPOINTS),
        # a small shared dev machine: do not refuse to deploy because the host's memory or a small heap looks busy
        "plugins.ml_commons.native_memory_threshold": 100,
        "plugins.ml_commons.jvm_heap_memory_threshold": 100,
    },
)


def opensearch_node(name: str = "default", port: int = 9400, heap: str | None = None) -> ManagedNode:
    """The managed node (dev default: HTTP 9400, transport 9500; away from the Elasticsearch ports)."""
    return ManagedNode(OPENSEARCH, name=name, port=port, heap=heap or os.environ.get("SEARCHTUNE_OS_HEAP", "1g"))
