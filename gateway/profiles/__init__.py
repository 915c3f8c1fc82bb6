"""Built-in device profiles: one YAML register map per meter model, in this folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    points: list[dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@lru_cache(maxsize=64)
def load_profile(name: str) -> Profile:
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(
            f"unknown profile {name!r} (built-in: {', '.join(available_profiles())})"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Profile(
        name=data["name"],
        description=data.get("description", ""),
        points=list(data["points"]),
        defaults=dict(data.get("defaults") or {}),
    )
