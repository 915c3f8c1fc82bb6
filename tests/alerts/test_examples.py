"""The rule examples in the OpenAPI document are valid rules, one for every kind and check."""

from __future__ import annotations

import pytest

from api.routes.alerts import _EXAMPLES
from lingtan.core.alerts.rules import CHECKS, KINDS, parse_rule


@pytest.mark.parametrize("name", sorted(_EXAMPLES))
def test_every_example_is_a_valid_rule(name: str) -> None:
    parse_rule(_EXAMPLES[name]["value"])


def test_every_kind_and_check_has_an_example() -> None:
    values = [e["value"] for e in _EXAMPLES.values()]
    assert {v["kind"] for v in values} == set(KINDS)
    assert {v["check"] for v in values if v["kind"] == "data_quality"} == set(CHECKS)
