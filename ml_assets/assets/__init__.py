"""The assets, in graph order: ingestion, training, deployment."""
