"""Bad input in every section of the zero-carbon programme gets an error naming its field and line."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from lingtan.core.site_file import SiteFileError, parse_site_file

BASE: dict[str, Any] = {
    "site": {"id": "p", "name": "P", "timezone": "Asia/Shanghai", "grid_region": "north_east"},
    "programme": {"base_year": 2021, "floor_area_m2": 1000, "history": [
        {"year": 2021, "electricity_bought_kwh": 1000, "evidence": "report 2021"}],
        "output_value": [{"year": 2022, "value_wan_cny": 100, "evidence": "statistics 2022"}]},
    "targets": [{"id": "t1", "kind": "emissions", "reduction": 0.3, "target_year": 2027}],
    "offsets": [{"id": "o1", "type": "ccer", "project": "wind", "vintage": 2022, "quantity_t": 10,
                 "serial_from": "C-0001", "serial_to": "C-0010", "retired_on": "2023-02-01",
                 "reference": "R1", "period": 2022}],
    "evaluations": {
        "zero_carbon": {"checklist": [{"item": "accounting", "status": "met", "evidence": "doc"}]},
        "green_factory": {"indicators": [{"indicator": "tce_per_unit", "baseline": 2, "leading": 1,
                                          "weight": 1, "source": "site"}]},
        "cloud": {"grades": ["A", "B"], "indicators": [
            {"indicator": "carbon_per_tce", "weight": 1, "intervals": [[None, 1], [1, None]]}]},
    },
}


def error(path: list[str | int], value: Any, *, drop: bool = False) -> str:
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    with pytest.raises(SiteFileError) as exc:
        parse_site_file(text, "site.yaml")
    return str(exc.value)


def test_the_base_file_is_valid() -> None:
    sf, _ = parse_site_file(yaml.safe_dump(BASE, sort_keys=False), "site.yaml")
    assert sf.zero_carbon is not None and sf.zero_carbon.targets[0].id == "t1"


@pytest.mark.parametrize(("path", "value", "names", "says"), [
    (["programme", "base_year"], 1800, "programme.base_year", "greater than or equal to 1990"),
    (["programme", "history", 0, "evidence"], "  ", "programme.history.0.evidence", "required"),
    (["programme", "history", 0, "fuels"], [{"carrier": "diesel", "amount": 5, "unit": "L"}],
     "programme.history.0.fuels.0", "density_kg_per_l"),
    (["programme", "history", 0, "electricity_bought_kwh"], -5,
     "programme.history.0.electricity_bought_kwh", "greater than or equal to 0"),
    (["programme", "output_value", 0, "month"], "2022-01", "programme.output_value.0",
     "either year or month"),
    (["targets", 0, "kind"], "happiness", "targets.0.kind", "emissions"),
    (["targets", 0, "value"], 0.5, "targets.0", "either reduction"),
    (["targets", 0, "target_year"], 2020, "targets.0.target_year", "after the base year 2021"),
    (["targets", 0, "per"], "product", "targets.0", "per: applies only to an intensity target"),
    (["offsets", 0, "quantity_t"], 11, "offsets.0", "quantity_t: serials C-0001–C-0010 are 10 credits"),
    (["offsets", 0, "retired_on"], "2021-05-01", "offsets.0", "retired_on: 2021-05-01 is before the vintage"),
    (["offsets", 0, "serial_to"], "D-0010", "offsets.0", "must share serial_from's prefix"),
    (["offsets", 0, "type"], "i-rec", "offsets.0.type", "never an offset"),
    (["evaluations", "zero_carbon", "checklist", 0, "evidence"], "", "evaluations.zero_carbon.checklist.0",
     "evidence: required when the status is met"),
    (["evaluations", "zero_carbon", "levels"], [{"stars": 7, "source": "x"}],
     "evaluations.zero_carbon.levels.0.stars", "less than or equal to 6"),
    (["evaluations", "green_factory", "indicators", 0, "leading"], 2,
     "evaluations.green_factory.indicators.0", "leading: must differ from the baseline"),
    (["evaluations", "green_factory", "indicators", 0, "indicator"], "smiles",
     "evaluations.green_factory.indicators.0.indicator", "tce_per_unit"),
    (["evaluations", "cloud", "indicators", 0, "weight"], 0.5, "evaluations.cloud", "weights add up to 0.5"),
    (["evaluations", "cloud", "indicators", 0, "intervals"], [[0, 1]], "evaluations.cloud",
     "one interval per grade (2), got 1"),
])
def test_bad_input_names_the_field(path: list[str | int], value: Any, names: str, says: str) -> None:
    msg = error(path, value)
    assert f": {names}" in msg.replace("[", ".").replace("]", ""), msg
    assert says in msg, msg
    assert msg.startswith("site.yaml:") and msg.split(":")[1].isdigit(), msg


def refused(change: Any) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    with pytest.raises(SiteFileError) as exc:
        parse_site_file(text, "site.yaml")
    return str(exc.value)


def test_cross_section_errors_name_their_field() -> None:
    def per_area(d: dict[str, Any]) -> None:
        del d["programme"]["floor_area_m2"]
        d["targets"].append({"id": "t2", "kind": "intensity", "per": "floor_area", "reduction": 0.2,
                             "target_year": 2030})
    assert ": targets[1].per: per floor_area needs programme.floor_area_m2" in refused(per_area)

    def no_base(d: dict[str, Any]) -> None:
        del d["programme"]["base_year"]
    assert ": targets[0].base_year: required: the programme names no base_year" in refused(no_base)

    def twice(d: dict[str, Any]) -> None:
        d["targets"].append(copy.deepcopy(d["targets"][0]))
    assert ": targets[1].id: 't1' is already targets[0]" in refused(twice)

    def year_twice(d: dict[str, Any]) -> None:
        d["programme"]["history"].append(copy.deepcopy(d["programme"]["history"][0]))
    assert "history[1].year: 2021 is already entered as history[0]" in refused(year_twice)

    def offset_id_twice(d: dict[str, Any]) -> None:
        d["offsets"].append({**d["offsets"][0], "serial_from": "C-0100", "serial_to": "C-0109"})
    assert ": offsets[1].id: 'o1' is already offsets[0]" in refused(offset_id_twice)
