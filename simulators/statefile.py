"""Saving and resuming the simulator's state, so meters keep counting across restarts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from simulators.site import SiteModel


class StateFileError(ValueError):
    """The state file exists but cannot be used; the message names the file."""


def save(model: SiteModel, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous state intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(model.to_dict(), f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> SiteModel:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SiteModel.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateFileError(
            f"cannot resume from simulator state file {path}: {exc}; "
            "delete it to start afresh (meter counters will restart)"
        ) from exc
