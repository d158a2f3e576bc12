"""The checks a pipeline passes before it is stored: its headers reference only allow-listed secrets (secrets.py)
and its endpoint is an allowed host (endpoints.py). A refusal is a PipelineError naming the field, answered 400."""

from __future__ import annotations

from searchtune.gateway import secrets
from searchtune.gateway.endpoints import EndpointPolicy
from searchtune.gateway.pipelines import Pipeline, PipelineError


def vet_pipeline(pipeline: Pipeline, endpoints: EndpointPolicy) -> None:
    """Raise PipelineError (``pipeline [x]: request_processors[0].neural_rerank.headers.X-Home: ...``) for a
    processor, rerank or hybrid, whose headers reference a variable outside the allow-list or whose endpoint is not
    an allowed model endpoint."""
    steps = []
    if pipeline.hybrid is not None:
        steps.append(("request_processors.hybrid", pipeline.hybrid))
    if pipeline.rerank is not None:
        steps.append((pipeline.rerank.location, pipeline.rerank))
    for location, spec in steps:
        where = f"pipeline [{pipeline.name}]: {location}"
        for header, why in secrets.current().problems(spec.headers):
            raise PipelineError(f"{where}.headers.{header}: {why}")
        if spec.endpoint:
            why = endpoints.why_refused(spec.endpoint)
            if why:
                raise PipelineError(f"{where}.endpoint: {why}")
