"""Request bodies of the rerank APIs (field names exactly as each caller sends them), and the text type all
bodies share.

Unknown fields are ignored (clients add options over time); wrong types and missing required fields are 422; text
that is not valid Unicode (a lone surrogate from a ``\\ud800`` JSON escape) is refused while the body is validated,
so it never reaches the tokenizer (it used to crash it: a 500 and a reset connection).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


def valid_unicode(text: str) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PydanticCustomError("invalid_text", "text is not valid Unicode (lone surrogate at character "
                                      "{position})", {"position": exc.start}) from None
    return text


Text = Annotated[str, AfterValidator(valid_unicode)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextDoc(Body):
    text: Text


class CohereRerank(Body):
    """Cohere v1/v2 rerank (also what OpenSearch's cohere.rerank connector and ES's ``custom`` service send).
    v1 documents may be objects with any fields; ``rank_fields`` names the ones scored (default ``text``)."""

    model: str | None = None
    query: Text
    documents: list[Text | dict[str, Any]]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    rank_fields: list[str] | None = None

    @model_validator(mode="after")
    def _documents_have_text(self) -> "CohereRerank":
        fields = self.rank_fields or ["text"]
        for i, doc in enumerate(self.documents):
            if isinstance(doc, dict):
                values = [doc.get(f) for f in fields if f in doc]
                if not values or not all(isinstance(v, str) for v in values):
                    raise ValueError(f"documents[{i}] needs string field(s) {fields} (rank_fields)")
                for v in values:
                    valid_unicode(v)
        return self

    def texts(self) -> list[str]:
        """The text scored per document: a string as is; an object's ``rank_fields`` values, one per line."""
        fields = self.rank_fields or ["text"]
        return [d if isinstance(d, str) else "\n".join(d[f] for f in fields if f in d) for d in self.documents]


class DashScopeInput(Body):
    query: Text
    documents: list[Text | TextDoc]


class DashScopeParameters(Body):
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False


class DashScopeRerank(Body):
    model: str | None = None
    input: DashScopeInput
    parameters: DashScopeParameters = Field(default_factory=DashScopeParameters)


def doc_texts(documents: list[str | TextDoc]) -> list[str]:
    return [d if isinstance(d, str) else d.text for d in documents]


TruncationDirection = Literal["Left", "Right", "left", "right"]


class HfRerank(Body):
    """TEI ``{query, texts}`` and Elasticsearch hugging_face ``{query, documents}``; exactly one of the two lists."""

    query: Text
    texts: list[Text] | None = None
    documents: list[Text] | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "Right"
    raw_scores: bool = False

    @model_validator(mode="after")
    def _one_list(self) -> "HfRerank":
        if (self.texts is None) == (self.documents is None):
            raise ValueError("send exactly one of 'texts' (TEI) or 'documents' (Elasticsearch hugging_face)")
        return self

    @property
    def items(self) -> list[str]:
        return self.texts if self.texts is not None else self.documents  # type: ignore[return-value]


class AlibabaRerank(Body):
    query: Text
    docs: list[Text]
    top_n: int | None = Field(default=None, ge=1)
