"""HTTP API: routes, auth and problem details only; every figure comes from the core (lingtan/core)."""
