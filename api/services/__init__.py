"""Query and KPI functions: the public surface the API routes and the dashboard call."""
