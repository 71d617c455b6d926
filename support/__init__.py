"""Tools for tests and benchmarks: data generators, a stopwatch for the freshness loop, a client
for a running ``dagster dev``, the asset-graph renderer. Never imported by the library
(``recassets/``) or the code location (``definitions.py``, ``assets/``, ``sensors/``,
``resources/``, ``serving/``).

Like ``assets/``, it runs from the repo root and is not installed into site-packages:
``pytest`` (rootdir on ``sys.path``) and ``python -m benchmarks.<name>`` find it there.
"""
