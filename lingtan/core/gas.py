"""One natural-gas basis per site: its heating value and the reference conditions of its volumes.

Scope 1, standard coal, boiler efficiency and avoided gas all turn metered m³ into energy, so
they take it from the same place (docs/domain.md "Natural gas basis"):

- the site's net calorific value (``gas_ncv_gj_per_10k_m3``), quoted per m³ at
  ``gas_ncv_reference_c`` (0 °C: Nm³, as the MEE guideline quotes it; or 20 °C);
- the reference temperature of its meters' m³ (``gas_volume_reference_c``), both at
  101.325 kPa; an ideal gas at equal pressure scales with 1/T, so a m³ at 20 °C holds
  273.15/293.15 of a Nm³ at 0 °C.

Internally every volume is in Nm³ (0 °C, 101.325 kPa), the unit the factors are quoted per.
CO2 keeps the MEE guideline's emission factor per GJ (carbon content × oxidation × 44/12,
i.e. 21.62 tCO2/10⁴Nm³ at 389.31 GJ/10⁴Nm³) and applies it to the site's NCV; standard coal is
NCV ÷ 29.3076 MJ/kgce (GB/T 2589-2020: 1 kgce is fuel of 29 307.6 kJ net heating value). A site's
own factor override for either wins, named as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from lingtan.core.factors import FUEL_BASIS, Factor, factor
from lingtan.core.site_schema import SiteParams

T0_K = 273.15
KELVIN = {0: 273.15, 20: 293.15}
KGCE_MJ = 29.3076  # GB/T 2589-2020: 1 kgce = 7000 kcal × 4.1868 kJ/kcal = 29 307.6 kJ
MEE_NCV_GJ_PER_10K_NM3 = FUEL_BASIS["natural_gas"].ncv  # 389.31, the library CO2 factor's basis
_GBT = "GB/T 2589-2020: standard coal = net heating value ÷ 29.3076 MJ/kgce (1 kgce = 29 307.6 kJ)"


@dataclass(frozen=True)
class GasBasis:
    ncv_gj_per_nm3: float          # at 0 °C, 101.325 kPa
    metered_to_nm3: float          # × metered m³ = Nm³
    ncv_given: str                 # the NCV as the site gave it, for notes and sources
    meter_c: int | None            # None: the site has not said

    def nm3(self, metered_m3: float) -> float:
        return metered_m3 * self.metered_to_nm3

    def metered(self, nm3: float) -> float:
        return nm3 / self.metered_to_nm3

    def gj(self, metered_m3: float) -> float:
        return self.nm3(metered_m3) * self.ncv_gj_per_nm3

    @property
    def gj_per_metered_m3(self) -> float:
        return self.ncv_gj_per_nm3 * self.metered_to_nm3

    def note(self) -> str:
        head = (f"natural gas: one net calorific value, {self.ncv_given}, gives Scope 1, standard coal, "
                "boiler efficiency and avoided gas")
        if self.meter_c is None:
            return (f"{head}; the gas meters' reference temperature is not declared "
                    "(energy.gas_volume_reference_c), so metered m³ are taken as m³ at the NCV's conditions")
        if self.metered_to_nm3 == 1.0:
            return f"{head}; metered m³ are at {self.meter_c} °C, 101.325 kPa, like the NCV"
        return (f"{head}; metered m³ at {self.meter_c} °C, 101.325 kPa are converted to Nm³ at 0 °C "
                f"× {'273.15/293.15' if self.meter_c == 20 else '293.15/273.15'}")


def gas_basis(p: SiteParams) -> GasBasis:
    ncv_c = p.gas_ncv_reference_c
    # NCV per m³ at T scales with 1/T: per Nm³ it is the quoted value × T/273.15.
    ncv_nm3 = p.gas_ncv_gj_per_10k_m3 / 1e4 * KELVIN[ncv_c] / T0_K
    meter_c = p.gas_volume_reference_c
    to_nm3 = T0_K / KELVIN[meter_c if meter_c is not None else ncv_c]
    given = f"{p.gas_ncv_gj_per_10k_m3:g} GJ/10⁴m³ at {ncv_c} °C, 101.325 kPa"
    return GasBasis(ncv_nm3, to_nm3, given, meter_c)


def factors(p: SiteParams, site_id: str, factor_set: str, year: int, overrides: dict[str, Factor]
            ) -> dict[str, Factor]:
    """``co2:natural_gas`` and ``tce:natural_gas`` per Nm³ at the site's NCV, as overrides for
    ``lingtan.core.carbon.convert``; a site's own override of either is kept."""
    basis = gas_basis(p)
    ncv_10k = basis.ncv_gj_per_nm3 * 1e4  # GJ/10⁴Nm³
    out: dict[str, Factor] = {}
    if "co2:natural_gas" in overrides:
        out["co2:natural_gas"] = overrides["co2:natural_gas"]
    else:
        lib = factor(factor_set, "co2", "natural_gas", year)
        if abs(ncv_10k - MEE_NCV_GJ_PER_10K_NM3) < 1e-9:
            out["co2:natural_gas"] = lib
        else:
            per_gj = lib.value / MEE_NCV_GJ_PER_10K_NM3
            out["co2:natural_gas"] = Factor(
                per_gj * ncv_10k, lib.unit, None, None,
                f"{lib.source}, per GJ ({per_gj:.6g} tCO2/GJ) at the site's NCV {basis.ncv_given} "
                f"= {ncv_10k:.6g} GJ/10⁴Nm³", key=f"site:{site_id}:co2:natural_gas", kind="co2",
                subject="natural_gas")
    if "tce:natural_gas" in overrides:
        out["tce:natural_gas"] = overrides["tce:natural_gas"]
    else:
        kgce = basis.ncv_gj_per_nm3 * 1000 / KGCE_MJ
        out["tce:natural_gas"] = Factor(
            kgce, "kgce/m3", None, None,
            f"{_GBT}, at the site's NCV {basis.ncv_given} = {basis.ncv_gj_per_nm3 * 1000:.6g} MJ/Nm³; "
            "per Nm³ (0 °C, 101.325 kPa)", key=f"site:{site_id}:tce:natural_gas", kind="tce",
            subject="natural_gas")
    return out
