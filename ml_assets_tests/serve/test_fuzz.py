"""Generated input against the service: schemathesis calls every operation of /openapi.json
(the three models' real schemas) and finds no 5xx and no answer outside the document; and a
JSON row is accepted exactly when the pandera contract accepts the same row."""

import json

import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ml_assets.learn.contract import ContractViolation, validate_features
from ml_assets.serve.app import ServiceSettings, create_app
from ml_assets.serve.schema import request_adapter, request_rows
from ml_assets_tests.conftest import CANCER, DIABETES
from ml_assets_tests.learn.test_generic_contract import shop
from ml_assets_tests.serve.test_app import deploy, fitted

pytestmark = pytest.mark.slow


@pytest.fixture
def served_api(tmp_path, data_dir):
    specs = {spec.name: spec for spec in (DIABETES, CANCER, shop(tmp_path))}
    for spec in specs.values():
        deploy(data_dir, spec, fitted(spec))
    app = create_app(specs, ServiceSettings(data_dir=str(data_dir), max_rows=50))
    with TestClient(app):  # runs the lifespan: every model loaded
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


NAMES = ("diabetes", "breast_cancer", "shop")
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]


def fuzzed(operation, mode) -> set[tuple[str, int]]:
    """Call one operation with generated cases; the (path, status class) pairs seen."""
    seen = set()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        response = case.call_and_validate(checks=CHECKS)
        seen.add((operation.path, response.status_code // 100))

    call()
    return seen


# schemathesis's pytest plugin (`from_fixture`) does not run on pytest 9.2 (it sets the
# removed `_nodeid`), so each operation's cases are drawn with Hypothesis directly.
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_no_operation_answers_5xx_or_outside_its_schema(served_api, mode):
    operations = [result.ok() for result in served_api.get_all_operations()]
    seen = set()
    assert {"/models/shop/predict", "/models/breast_cancer", "/ready"} <= {
        operation.path for operation in operations
    }
    if mode == schemathesis.GenerationMode.NEGATIVE:  # nothing to break in a GET without input
        operations = [operation for operation in operations if operation.method == "post"]
    for operation in operations:
        seen |= fuzzed(operation, mode)
    predicted = {(path, kind) for path, kind in seen if path.endswith("/predict")}
    wanted = 2 if mode == schemathesis.GenerationMode.POSITIVE else 4
    assert {(f"/models/{name}/predict", wanted) for name in NAMES} <= predicted, seen


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 3000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["web", "store", "gold", "yes", "no", "1", "0", "12", "2.5", "", "abc", "nan"]),
)


def verdict_of_json(spec, row) -> set | None:
    """The (column, row) pairs the JSON path refuses, or None when it accepts."""
    try:
        request_rows(spec, json.dumps({"rows": [row]}).encode())
    except ContractViolation as violation:
        return {problem["column"] for problem in violation.problems}
    return None


def verdict_of_pandera(spec, row) -> set | None:
    try:
        validate_features(spec, pd.DataFrame([row], dtype=object), source="row")
    except ContractViolation as violation:
        return {problem["column"] for problem in violation.problems}
    return None


@pytest.mark.parametrize("name", ["diabetes", "shop"])
def test_a_json_row_is_accepted_exactly_when_the_contract_accepts_it(tmp_path, name):
    spec = DIABETES if name == "diabetes" else shop(tmp_path)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.fixed_dictionaries({column: VALUES for column in spec.features}))
    def agree(row):
        assert verdict_of_json(spec, row) == verdict_of_pandera(spec, row)
        body = json.dumps({"rows": [row]}).encode()
        try:  # what the fast type accepts, the lenient one accepts too, and reads alike
            fast = request_adapter(spec, lenient=False).validate_json(body)
        except ValidationError:
            return
        assert fast == request_adapter(spec).validate_json(body)

    agree()
