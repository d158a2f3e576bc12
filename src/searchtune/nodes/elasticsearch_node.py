"""The Elasticsearch distribution searchtune runs locally. The version lives here and only here."""

from __future__ import annotations

import os

from searchtune.nodes.node import Distribution, ManagedNode

#: Newest 9.x integ-test distribution that resolves on Maven Central (checked 2026-11-25).
ELASTICSEARCH_VERSION = os.environ.get("SEARCHTUNE_ES_VERSION", "9.2.8")

ELASTICSEARCH = Distribution(
    product="elasticsearch",
    group_id="org.elasticsearch.distribution.integ-test-zip",
    artifact_id="elasticsearch",
    version=ELASTICSEARCH_VERSION,
    conf_env="ES_PATH_CONF",
    java_home_env="ES_JAVA_HOME",
    java_opts_env="ES_JAVA_OPTS",
    min_java=21,
    settings={"xpack.security.enabled": False},
)


def elasticsearch_node(name: str = "default", port: int = 9200, heap: str | None = None) -> ManagedNode:
    return ManagedNode(ELASTICSEARCH, name=name, port=port, heap=heap or os.environ.get("SEARCHTUNE_ES_HEAP", "1g"))
