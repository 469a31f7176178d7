"""ml_assets: a Dagster code location that keeps a regression model trained, checked and deployed."""
