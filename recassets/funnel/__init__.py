"""The request path a bento runs, in memory: retrieval, ranking and rules for one user.

Reading order: ``recommender`` (the funnel, composing the rest) -> ``stages`` (candidate
sources: ANN retrieval, trending, fresh, popularity) -> ``ranking`` (the heavy ranker over the
candidates) -> ``rules`` (plain NumPy: seen items, caps, fresh slots, top-k). ``items`` and
``users`` hold the in-memory item side and the user's inputs. The BentoML service around it
is ``serving/service.py`` at the repo root; building and starting bentos is ``recassets.bento``.
"""
