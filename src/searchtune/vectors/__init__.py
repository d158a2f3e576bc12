"""Vectors in the index: embedders, the dense_vector mapping and its metadata, versioned builds behind an alias,
and the pure kNN-request and fusion functions that hybrid search (gateway and evaluation) is built from."""
