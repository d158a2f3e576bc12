"""Request bodies of the embedding and TEI classification APIs (field names as each client sends them).

Every option a client can send is either honoured or refused with a 4xx: ``dimensions`` (OpenAI, TEI),
``output_dimension`` (Cohere v2) and ``dimension`` (DashScope) truncate only Matryoshka models; ``normalize``
and ``truncate`` are honoured; image inputs and sparse output are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from searchtune.serve.schemas import Body, Text, TruncationDirection


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class OpenAIEmbeddings(Body):
    """``input``: a string, strings, or token ids of this model's tokenizer (one list, or one list per input)."""

    input: Text | list[Text] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class CohereEmbed(Body):
    """Cohere v1 ``/v1/embed`` and v2 ``/v2/embed`` (``texts``; v2 also ``inputs`` of text content)."""

    model: str | None = None
    texts: list[Text] | None = None
    images: list[str] | None = None
    inputs: list[dict] | None = None
    input_type: str | None = None
    embedding_types: list[Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]] | None = None
    truncate: Annotated[Literal["NONE", "START", "END"] | None, BeforeValidator(_upper)] = None  # None: END
    output_dimension: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _text_only(self) -> "CohereEmbed":
        if self.images:
            raise ValueError("images: this server embeds text only")
        if self.inputs is not None:
            texts = []
            for i, item in enumerate(self.inputs):
                content = item.get("content") if isinstance(item, dict) else None
                parts = content if isinstance(content, list) else []
                if not parts or any(not isinstance(p, dict) or p.get("type") != "text" for p in parts):
                    raise ValueError(f"inputs[{i}]: this server embeds text content only")
                texts.append("\n".join(str(p.get("text", "")) for p in parts))
            self.texts = (self.texts or []) + texts
        if self.texts is None:
            raise ValueError("send 'texts' (or 'inputs' with text content)")
        return self


class DashScopeEmbedInput(Body):
    texts: Text | list[Text]


class DashScopeEmbedParameters(Body):
    text_type: Literal["query", "document"] | None = None
    dimension: int | None = Field(default=None, ge=1)
    output_type: Literal["dense"] = "dense"


class DashScopeEmbed(Body):
    model: str | None = None
    input: DashScopeEmbedInput
    parameters: DashScopeEmbedParameters = Field(default_factory=DashScopeEmbedParameters)


class TeiEmbed(Body):
    inputs: Text | list[Text]
    normalize: bool = True
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "Right"
    prompt_name: str | None = None
    dimensions: int | None = Field(default=None, ge=1)


class SimilarityInputs(Body):
    source_sentence: Text
    sentences: list[Text]


class TeiSimilarity(Body):
    inputs: SimilarityInputs
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "Right"
    prompt_name: str | None = None


class ClassifyParameters(Body):
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None
    top_k: int | None = Field(default=None, ge=1)


class TeiPredict(Body):
    """TEI ``/predict``: one text, one pair ``[a, b]``, or a batch of either; huggingface_hub's
    ``text_classification`` adds ``parameters``."""

    inputs: Text | list[Text] | list[list[Text]]
    raw_scores: bool = False
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "Right"
    parameters: ClassifyParameters = Field(default_factory=ClassifyParameters)


class AlibabaEmbed(Body):
    input: Text | list[Text]
    input_type: str | None = None
