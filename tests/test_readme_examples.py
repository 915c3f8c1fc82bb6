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


def test_the_structure_example_validates() -> None:
    from lingtan.core.structure import resolve
    from lingtan.core.structure_schema import Structure, check_structure

    text = README.read_text()
    block = text[text.index("structure:\n"):]
    structure = Structure.model_validate(yaml.safe_load(block[:block.index("```")])["structure"])
    check_structure(structure)
    forms = {node: {m: c for (m, _), c in form.items()}
             for node, form in resolve(structure).forms("electricity").items()}
    assert forms["ws1"] == {"feeder-7": 1.0, "feeder-7a": -1.0, "shared-transformer": 0.5}
    assert forms["air"] == {"compressor-1": 1.0, "compressor-2": 1.0}


def test_the_programme_example_validates() -> None:
    from lingtan.core.programme_schema import ZeroCarbonProgramme, check_programme

    text = README.read_text()
    block = text[text.index("programme:\n"):]
    z = ZeroCarbonProgramme.model_validate(yaml.safe_load(block[:block.index("```")]))
    check_programme(z)
    assert z.programme.base_year == 2020 and [t.kind for t in z.targets] == [
        "emissions", "green_power_share", "intensity"]
    assert z.offsets[0].serials == ("CCER-2024-LN-", 1, 500)


def test_the_savings_example_validates() -> None:
    from lingtan.core.savings_schema import Savings

    text = README.read_text()
    block = text[text.index("energy_baselines:\n"):]
    s = Savings.model_validate(yaml.safe_load(block[:block.index("```")]))
    assert [p.option for p in s.projects] == ["B"] and s.energy_baselines[0].boundary.site
