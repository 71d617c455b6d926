"""Benchmarks: scripts that print figures next to a baseline measured in the same run. Run from
the repo root as modules, ``.venv/bin/python -m benchmarks.<name>`` (see each one's docstring),
so that ``recassets`` and ``support`` import from the checkout without touching ``sys.path``."""
