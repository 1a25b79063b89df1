"""Checkpoints on disk: atomic folder writes, the checkpoint format, and loading/saving a model."""
