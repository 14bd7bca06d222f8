"""Every operation of the served OpenAPI document, fuzzed by schemathesis with a valid key.

Generated requests, valid and invalid alike, must never meet a 5xx, and every answer must be
one the document declares, in the shape it declares. The examples per operation are bounded
so the suite stays quick; the ids in paths are mostly ones that do not exist (404s, which the
document declares).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api.client import API, new_key
from tests.integration.api.record import Record

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def served_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)


@pytest.fixture(scope="module")
def module_record(engine: Any, redis_client: Any, tenant: str) -> Any:
    # One record for the module: hypothesis runs many examples inside one test function.
    record = Record(engine, redis_client, tenant)
    yield record
    record.purge()


@pytest.fixture(scope="module")
def bearer(app: Flask, tenant: str, module_record: Record) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(app, tenant)}"}


def test_no_server_error_and_every_answer_in_the_schema(
    served_schema: Any, bearer: dict[str, str]
) -> None:
    # One test walks every operation (schemathesis's pytest plugin does not run on pytest 9.2),
    # with valid requests and invalid ones, and reports every operation that failed.
    failures: dict[str, str] = {}
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation.as_strategy(generation_mode=mode), bearer)
            except Unsatisfiable:
                # An operation without parameters or a body has no invalid request to make.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - every operation's failure is reported
                failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{op}: {why}" for op, why in failures.items())


def _fuzz(strategy: Any, bearer: dict[str, str]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=bearer, checks=CHECKS)

    run()
