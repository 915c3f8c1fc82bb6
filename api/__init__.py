"""HTTP API: routes are thin; queries and KPI logic live in api.services."""
