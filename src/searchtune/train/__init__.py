"""Fine-tuning rerankers and embedders with sentence-transformers trainers on mined triplets (see docs/training.md)."""
