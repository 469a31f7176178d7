"""Tests of ml_assets.learn."""
