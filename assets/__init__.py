"""Dagster assets: thin wrappers over ``recassets``, one module per stage."""
