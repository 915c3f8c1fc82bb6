"""Performance benchmarks; each is a module run with ``python -m benchmarks.<name>``."""
