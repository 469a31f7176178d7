"""Tests of ml_assets.store."""
