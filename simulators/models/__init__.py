"""Pure, deterministic physical models of the demo plant's equipment.

Each module holds a frozen spec (nameplate data), a mutable state dataclass (everything
that must survive a restart, including its own random stream) and a ``step`` function
that advances the state by ``dt`` seconds. A step evaluates its inputs at the start of the
interval and integrates over it, so counters are exact sums of reported power × dt.
"""
