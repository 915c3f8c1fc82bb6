"""The factor library against docs/domain.md: every table value, the fuel formula, the validity rule."""

from datetime import date

import pytest

from lingtan.core.factors import (
    FACTOR_SETS,
    FUEL_BASIS,
    Factor,
    FactorError,
    factor,
    grid_factor,
    list_factors,
)

# docs/domain.md "Electricity CO2 factors": (year, national average, residual mix, fossil-only)
NATIONAL = [(2021, 0.5568, 0.5942, 0.8426), (2022, 0.5366, 0.5856, 0.8325), (2023, 0.5306, 0.6096, 0.8273)]
# docs/domain.md regional grid averages, 2021 / 2022 / 2023
REGIONAL = {
    "north": (0.7120, 0.6776, 0.6361),
    "north_east": (0.6012, 0.5564, 0.5122),
    "east": (0.5992, 0.5617, 0.5500),
    "central": (0.5354, 0.5395, 0.5271),
    "north_west": (0.5951, 0.5857, 0.5543),
    "south": (0.4326, 0.3869, 0.4042),
    "south_west": (0.2113, 0.2268, 0.2472),
}
# docs/domain.md standard coal (GB/T 2589-2020) and heat/fuel CO2 (MEE defaults)
STATIC = [
    ("tce", "electricity", 0.1229, "kgce/kWh"),
    ("tce", "heat", 0.03412, "tce/GJ"),
    ("tce", "diesel", 1.4571, "kgce/kg"),
    ("tce", "gasoline", 1.4714, "kgce/kg"),
    ("tce", "fuel_oil", 1.4286, "kgce/kg"),
    ("tce", "lpg", 1.7143, "kgce/kg"),
    ("tce", "raw_coal", 0.7143, "kgce/kg"),
    ("tce", "coke", 0.9714, "kgce/kg"),
    ("tce", "natural_gas", 1.2143, "kgce/m3"),
    ("tce", "natural_gas_oil_field", 1.3300, "kgce/m3"),
    ("tce", "steam", 0.1286, "kgce/kg"),
    ("steam_heat", "steam", 2.6796, "GJ/t"),
    ("co2", "heat", 0.11, "tCO2/GJ"),
    ("co2", "natural_gas", 21.62, "tCO2/10^4 Nm3"),
    ("co2", "diesel", 3.145, "tCO2/t"),
    ("co2", "gasoline", 3.043, "tCO2/t"),
    ("co2", "lpg", 2.954, "tCO2/t"),
    ("co2", "fuel_oil", 3.047, "tCO2/t"),
    ("co2", "raw_coal", 1.900, "tCO2/t"),
]


@pytest.mark.parametrize(("year", "avg", "residual", "fossil"), NATIONAL)
def test_national_grid_factors(year, avg, residual, fossil):
    for kind, value in (("grid", avg), ("grid_residual", residual), ("grid_fossil", fossil)):
        f = factor("mee-2023", kind, "national", year)
        assert (f.value, f.unit, f.year) == (value, "kgCO2/kWh", year)
        assert "MEE/NBS" in f.source and str(year) in f.source


@pytest.mark.parametrize("region", REGIONAL)
@pytest.mark.parametrize("i", range(3))
def test_regional_grid_factors(region, i):
    year = 2021 + i
    f = factor("mee-2023", "grid", region, year)
    assert (f.value, f.year, f.region) == (REGIONAL[region][i], year, region)
    assert f.key == f"mee-2023:grid:{region}:{year}"


@pytest.mark.parametrize(("kind", "subject", "value", "unit"), STATIC)
def test_static_factors_in_every_set(kind, subject, value, unit):
    for name in FACTOR_SETS:
        f = factor(name, kind, subject)
        assert (f.value, f.unit, f.year, f.valid_from, f.valid_to) == (value, unit, None, None, None)
        assert f.source


def test_every_factor_names_a_source_and_a_unique_key():
    for factors in FACTOR_SETS.values():
        keys = [f.key for f in factors]
        assert len(keys) == len(set(keys))
        assert all(f.source and f.unit for f in factors)


@pytest.mark.parametrize(("fuel", "published", "decimals"),
                         [("natural_gas", 21.62, 2), ("diesel", 3.145, 3),
                          ("gasoline", 3.043, 3), ("lpg", 2.954, 3),
                          # 40.19 × 0.0211 × 0.98 × 44/12 = 3.0472; 20.908 × 0.02637 × 0.94 × 44/12 = 1.9003
                          ("fuel_oil", 3.047, 3), ("raw_coal", 1.900, 3)])
def test_fuel_factors_recompute_from_ncv_carbon_oxidation(fuel, published, decimals):
    b = FUEL_BASIS[fuel]
    recomputed = b.ncv * b.carbon * b.oxidation * 44 / 12
    assert round(recomputed, decimals) == pytest.approx(published)
    assert factor("mee-2023", "co2", fuel).value == published


def test_steam_heat_content_is_640_kcal_per_kg():
    kcal_per_kg = 640  # docs/domain.md; 4.1868 kJ/kcal (International Table calorie)
    gj_per_t = kcal_per_kg * 4.1868 / 1000
    assert factor("mee-2023", "steam_heat", "steam").value == pytest.approx(gj_per_t, abs=5e-5)


def test_electricity_equal_value_is_not_shipped():
    with pytest.raises(FactorError):
        factor("mee-2023", "tce", "electricity_equal")


def test_validity_data_year_until_the_next_then_open_ended():
    f21, f22, f23 = (factor("mee-2023", "grid", "east", y) for y in (2021, 2022, 2023))
    assert (f21.valid_from, f21.valid_to) == (date(2021, 1, 1), date(2021, 12, 31))
    assert (f22.valid_from, f22.valid_to) == (date(2022, 1, 1), date(2022, 12, 31))
    assert (f23.valid_from, f23.valid_to) == (date(2023, 1, 1), None)
    # the newest data year covers later readings until a newer set exists
    assert factor("mee-2023", "grid", "east", 2026).year == 2023
    assert factor("mee-2023", "grid", "east").year == 2023
    # in an older set its newest year is the open-ended one
    assert factor("mee-2022", "grid", "east", 2023).year == 2022
    assert factor("mee-2021", "grid", "east", 2025).value == 0.5992
    with pytest.raises(FactorError) as e:
        factor("mee-2023", "grid", "east", 2019)  # no back-casting
    assert e.value.field == "year"


def test_lookup_errors_name_the_field():
    for args, field in [(("mee-2030", "grid", "east"), "factor_set"), (("mee-2023", "bogus", "x"), "kind"),
                        (("mee-2023", "grid", "mars"), "region"), (("mee-2023", "co2", "wood"), "carrier")]:
        with pytest.raises(FactorError) as e:
            factor(*args)
        assert e.value.field == field


def test_overrides_layer_on_top():
    site = Factor(1.3300, "kgce/m3", None, None, "site: oil-field gas per supplier certificate")
    overrides = {"tce:natural_gas": site}
    f = factor("mee-2023", "tce", "natural_gas", overrides=overrides)
    assert f.value == 1.33 and f.source.startswith("site:") and f.key == "override:tce:natural_gas"
    assert factor("mee-2023", "tce", "diesel", overrides=overrides).value == 1.4571
    # an override that does not cover the year leaves the set's factor in place
    dated = {"grid:north": Factor(0.6, "kgCO2/kWh", 2024, "north", "site", valid_from=date(2024, 1, 1))}
    assert factor("mee-2023", "grid", "north", 2022, dated).value == 0.6776
    assert factor("mee-2023", "grid", "north", 2024, dated).value == 0.6


def test_list_filters():
    rows = list_factors("mee-2023", "grid", "north_east")
    assert [f.value for f in rows] == [0.6012, 0.5564, 0.5122]
    assert [f.year for f in list_factors("mee-2023", "grid", "north_east", 2022)] == [2022]
    assert {f.kind for f in list_factors("mee-2021")} == {"grid", "grid_residual", "grid_fossil", "co2",
                                                          "tce", "steam_heat"}


def test_grid_factor_for_the_kpi_engine_unchanged():
    f = grid_factor("north_east")
    assert (f.value, f.unit, f.year, f.region) == (0.5122, "kgCO2/kWh", 2023, "north_east")
    assert "MEE/NBS" in f.source
    assert grid_factor("national").value == 0.5306
    with pytest.raises(ValueError, match="mars"):
        grid_factor("mars")


def test_refrigerant_gwps_are_ar5_and_blends_are_mass_weighted():
    from lingtan.core.factors import MONTREAL_REFRIGERANTS, refrigerant_gwp, refrigerant_name

    assert refrigerant_gwp("R-134a") == (1300, refrigerant_gwp("HFC-134a")[1])  # type: ignore[index]
    assert "AR5" in refrigerant_gwp("r134a")[1]  # type: ignore[index]
    # R-410A = 50 % R-32 (677) + 50 % R-125 (3170) = 1923.5
    assert refrigerant_gwp("R-410A")[0] == pytest.approx(1923.5)  # type: ignore[index]
    # R-407C = 23 % × 677 + 25 % × 3170 + 52 % × 1300 = 155.71 + 792.5 + 676 = 1624.21
    assert refrigerant_gwp("R-407C")[0] == pytest.approx(1624.21)  # type: ignore[index]
    # R-404A = 44 % × 3170 + 52 % × 4800 + 4 % × 1300 = 1394.8 + 2496 + 52 = 3942.8
    assert refrigerant_gwp("R-404A")[0] == pytest.approx(3942.8)  # type: ignore[index]
    assert refrigerant_gwp("R-1234yf") is None
    assert refrigerant_name("hfc-32") == "R-32" and refrigerant_name("r22") == "R-22"
    assert "R-22" in MONTREAL_REFRIGERANTS
