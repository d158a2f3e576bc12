"""Training and evaluation data: typed records, loaders for common IR formats, validation, splitting, staging."""

from searchtune.data.records import Dataset, DatasetError, Document, Query, Qrels
from searchtune.data.loaders import load_dataset

__all__ = ["Dataset", "DatasetError", "Document", "Query", "Qrels", "load_dataset"]
