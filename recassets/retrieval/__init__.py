"""Candidate retrieval: the FAISS inner-product index over item embeddings, its factory
choice by catalog size, nprobe tuning and recall against exact search (``index``)."""
