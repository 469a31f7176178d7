"""Tests of ml_assets.pipeline."""
