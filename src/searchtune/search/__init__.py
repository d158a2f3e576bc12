"""Search engines: managed local nodes, clients, indexing, retrieval and the search-pipeline gateway."""
