"""The layers written down in pyproject.toml ([tool.importlinter]) hold, and a wrong arrow breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lingtan", "api", "dashboard", "gateway", "simulators", "migrations")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # the console script next to this interpreter; PYTHONPATH makes ``root``'s packages the ones analysed
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_hold() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_the_core_importing_an_app_breaks_them(tmp_path: Path) -> None:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    kpi = tmp_path / "lingtan" / "core" / "kpi.py"
    kpi.write_text(kpi.read_text() + "\nimport dashboard.formatting  # a wrong arrow\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "lingtan.core.kpi -> dashboard.formatting" in run.stdout, run.stdout
