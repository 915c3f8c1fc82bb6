"""Collectors turn meter traffic into Readings and hand them to the buffer."""
