"""Datasets and data caches: prepared motion-transfer data, temporal pairs, translation pairs."""
