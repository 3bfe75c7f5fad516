"""Data in: GPU price provider adapters, the canonical GPU registry and per-node aggregation."""
