"""Lingtan live dashboard (Dash): reads through the API's KPI layer, never its own SQL."""
