"""The Dagster graph of one model, as the data flows: ingestion (reference data, raw batches),
training (dataset, features, candidate, metrics), the gate's checks, deployment (production,
predictions), then the jobs, schedule and sensors that run them, the decisions and alerts they
write, and run health. Imports learn and store."""
