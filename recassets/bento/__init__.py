"""Bentos: the serving bundle of the current policy (models, index, Feast catalog, lineage),
``bentoml build`` of ``serving/service.py`` around it (``bundle``), and ``bentoml serve`` of a
built bento on 127.0.0.1 as a child process (``server``). The request path inside a running
bento is ``recassets.funnel``."""
