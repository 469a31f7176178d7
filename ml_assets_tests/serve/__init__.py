"""Tests of ml_assets.serve."""
