"""Datasets, the shard store, the mixing sampler and tensor augmentation."""
