"""The domain core: energy rules and rollups, the site model, the factor library, the one KPI
engine, reports and alert evaluation. It imports only the kernel (docs/architecture.md)."""
