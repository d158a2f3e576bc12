"""Managed local Elasticsearch/OpenSearch nodes: distributions fetched with Maven, a JDK found, a service user when
run as root, start/stop/status. A lifecycle concern of its own: nothing here talks to an index."""
