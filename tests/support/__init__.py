"""The test suite's own helpers (``pythonpath = ["tests"]`` in pyproject.toml)."""
