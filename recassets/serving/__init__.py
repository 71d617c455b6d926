"""Serving: the FAISS item index, the in-process funnel, the bundle and the bento build."""
