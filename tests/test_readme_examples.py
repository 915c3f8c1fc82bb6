"""The README's site-file example is valid input, so a reader who copies it gets no error."""

from __future__ import annotations

from pathlib import Path

import yaml

from lingtan.core.site_schema import ActivityEntry

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_activity_data_example_validates() -> None:
    text = README.read_text()
    block = text[text.index("activity_data:\n"):]
    entries = yaml.safe_load(block[:block.index("```")])["activity_data"]
    parsed = [ActivityEntry.model_validate(e) for e in entries]
    assert {e.carrier for e in parsed} == {"diesel", "refrigerant"}
    assert all(e.evidence for e in parsed)
