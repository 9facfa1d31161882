"""Schemathesis against the OpenAPI document on a live server: no 5xx, answers as documented.

Every default check runs except "schema-valid data is accepted": a body can
match the schema and still be refused with a 422 sentence (a model file that
is not uploaded, a source kind this build lacks), which is the right answer.
``SPIKEGATE_FUZZ_FULL=1`` adds schemathesis's coverage phase and more
examples (a minute or two more).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from spikegate.service.config import PipelineConfig
from spikegate.service.openapi import build_document
from tests.service.test_fuzz import GOOD, Server

SCHEMA = schemathesis.openapi.from_dict(build_document())
FULL = os.environ.get("SPIKEGATE_FUZZ_FULL") == "1"  # ~1 minute more, with the coverage phase
SCHEMA.config.generation.update(modes=[GenerationMode.NEGATIVE, GenerationMode.POSITIVE],
                                max_examples=50 if FULL else 8, deterministic=True)
SCHEMA.config.phases.update(phases=["examples", "coverage", "fuzzing"] if FULL
                            else ["examples", "fuzzing"])


def creates(body: Any) -> bool:
    try:
        PipelineConfig.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("st")) as s:
        yield s


@pytest.mark.slow
@SCHEMA.parametrize()
def test_api(case: schemathesis.Case, live: Server) -> None:
    case.query = {k: v for k, v in (case.query or {}).items() if k != "start"}
    if case.path == "/api/v1/pipelines" and case.method == "POST" and creates(case.body):
        return  # random valid pipelines: slow to warm up, heavy to run; test_api covers creation
    case.call_and_validate(base_url=f"http://127.0.0.1:{live.port}", headers=GOOD,
                           excluded_checks=[positive_data_acceptance], timeout=60)
