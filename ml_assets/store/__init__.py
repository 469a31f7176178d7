"""I/O and the process's environment: files written atomically, tables read, the landing
zone, the model registry, the asset storage, the settings, and how the process treats its
garbage collector. Imports nothing else of ml_assets; Dagster only for its resource classes."""
