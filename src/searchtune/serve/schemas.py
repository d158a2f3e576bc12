"""Request bodies of every API the server speaks (field names exactly as each caller sends them).

Unknown fields are ignored (clients add options over time); wrong types and missing required fields are 422.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextDoc(_Body):
    text: str


DocumentIn = str | TextDoc


def doc_texts(documents: list[DocumentIn]) -> list[str]:
    return [d if isinstance(d, str) else d.text for d in documents]


class CohereRerank(_Body):
    """Cohere v1/v2 rerank (also what OpenSearch's cohere.rerank connector and ES's ``custom`` service send)."""

    model: str | None = None
    query: str
    documents: list[DocumentIn]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False


class DashScopeInput(_Body):
    query: str
    documents: list[DocumentIn]


class DashScopeParameters(_Body):
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False


class DashScopeRerank(_Body):
    model: str | None = None
    input: DashScopeInput
    parameters: DashScopeParameters = Field(default_factory=DashScopeParameters)


class HfRerank(_Body):
    """TEI ``{query, texts}`` and Elasticsearch hugging_face ``{query, documents}``; exactly one of the two lists."""

    query: str
    texts: list[str] | None = None
    documents: list[str] | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    return_text: bool = False
    truncate: bool | None = None
    raw_scores: bool | None = None

    @model_validator(mode="after")
    def _one_list(self) -> "HfRerank":
        if (self.texts is None) == (self.documents is None):
            raise ValueError("send exactly one of 'texts' (TEI) or 'documents' (Elasticsearch hugging_face)")
        return self

    @property
    def items(self) -> list[str]:
        return self.texts if self.texts is not None else self.documents  # type: ignore[return-value]


class AlibabaRerank(_Body):
    query: str
    docs: list[str]
    top_n: int | None = Field(default=None, ge=1)


class OpenAIEmbeddings(_Body):
    input: str | list[str]
    model: str | None = None
    encoding_format: str = Field(default="float", pattern="^(float|base64)$")


class TeiEmbed(_Body):
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool | None = None


class AlibabaEmbed(_Body):
    input: str | list[str]
    input_type: str | None = None
