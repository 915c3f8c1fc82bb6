"""The dashboard's partial plotly.js bundle is the version plotly.py draws figures for."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "plotly-lingtan.min.js"


def _version(head: str) -> str:
    found = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    assert found, head[:200]
    return found.group(1)


def test_bundle_matches_the_plotly_js_of_plotly_py() -> None:
    full = files("plotly").joinpath("package_data/plotly.min.js").read_text()[:300]
    ours = BUNDLE.read_text()[:300]
    assert _version(ours) == _version(full), "run scripts/build-plotly-bundle.sh after upgrading plotly"
    assert "core, scatter, bar, waterfall, sankey, indicator, treemap, sunburst" in ours
    assert BUNDLE.stat().st_size < 2_000_000  # the point of it: a fraction of the full 4.8 MB
