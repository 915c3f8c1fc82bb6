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
    params: dict[str, float] = field(default_factory=dict)  # defaults for device params


def available_profiles(dirs: tuple[Path, ...] = ()) -> list[str]:
    return sorted({p.stem for d in (*dirs, PROFILE_DIR) for p in d.glob("*.yaml")})


def _find(name: str, dirs: tuple[Path, ...]) -> Path:
    for folder in (*dirs, PROFILE_DIR):  # a site's own profiles win over built-in ones
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise ProfileError(f"unknown profile {name!r} (available: {', '.join(available_profiles(dirs))})")


@lru_cache(maxsize=256)
def load_profile(name: str, dirs: tuple[Path, ...] = (), _seen: tuple[str, ...] = ()) -> Profile:
    """A profile by name; `extends: base` starts from the base profile's points, defaults and
    params, and the profile's own points replace the base's points of the same quantity."""
    if name in _seen:
        raise ProfileError(f"profile {name!r} extends itself ({' → '.join((*_seen, name))})")
    path = _find(name, dirs)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("points", []), list):
        raise ProfileError(f"{path}: a profile is a mapping with a `points` list")
    points = list(data.get("points") or [])
    defaults = dict(data.get("defaults") or {})
    params = dict(data.get("params") or {})
    if data.get("extends"):
        base = load_profile(str(data["extends"]), dirs, (*_seen, name))
        own = {p.get("quantity") for p in points}
        points = [p for p in base.points if p.get("quantity") not in own] + points
        defaults = {**base.defaults, **defaults}
        params = {**base.params, **params}
    if not points:
        raise ProfileError(f"{path}: profile {name!r} has no points")
    return Profile(name=str(data.get("name", name)), description=str(data.get("description", "")),
                   points=points, defaults=defaults, params=params)
