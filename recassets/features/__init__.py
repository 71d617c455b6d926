"""Feature tables: daily Delta partitions computed as of the end of each UTC day."""
