"""HTTP inference server: rerank and embedding APIs over a dynamic batcher, with hot swap from the registry."""
