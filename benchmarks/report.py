"""What every benchmark shares: its correctness checks and how it ends."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def add_layout_args(p: argparse.ArgumentParser) -> None:
    """The simulated Modbus plant (benchmarks.modbus_sim) the Modbus and memory runs poll."""
    p.add_argument("--devices", type=int, default=200, help="simulated meters")
    p.add_argument("--registers", type=int, default=20,
                   help="holding registers per meter, read as float32 points (even)")
    p.add_argument("--per-server", type=int, default=20,
                   help="unit ids per Modbus TCP server (one bus, one connection each)")
    p.add_argument("--poll", type=float, default=1.0, help="poll period (s)")


def finish(output: Path, result: dict[str, Any], ok: bool) -> int:
    """Write the JSON result; exit 0 on a missed target (a measurement), 1 on a wrong answer."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresult written to {output}")
    if not ok:
        print("CORRECTNESS FAILURE: see the FAIL lines above", file=sys.stderr)
        return 1
    return 0


class Progress:
    """Timestamped progress lines on stderr, so stdout holds only the result table."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)
