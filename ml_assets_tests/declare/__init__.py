"""Tests of ml_assets.declare."""
