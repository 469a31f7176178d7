"""The ML of one spec, without Dagster: the spec and its task (metrics, kinds), the data
contract, the scikit-learn pipeline, the splits, the model card and its plots, the reference
table and simulated batches, and what to warn about before training. Imports store."""
