"""The statistics libraries are imported only when a baseline is fitted: statsmodels and
scipy.stats take seconds to import, and every CLI command and API process reaches the baseline
module through the reports (lingtan/core/baseline_model.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("statsmodels", "scipy.stats")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_the_cli_reports_and_api_do_not_import_the_statistics_libraries() -> None:
    assert loaded_after("import lingtan.cli, lingtan.core.closings, lingtan.core.report_formats, "
                        "lingtan.core.savings_service, api.app") == []


def test_fitting_a_baseline_imports_them() -> None:
    # the probe can fail: the same check sees them once a model is fitted
    assert loaded_after("from lingtan.core.baseline_model import fit\n"
                        "fit([1.0, 2.1, 2.9, 4.2], {'x': [1.0, 2.0, 3.0, 4.0]})") == list(HEAVY)
