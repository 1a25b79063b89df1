"""hxtool: Hyper-X hypernetwork adapters for bringing low-resource languages into multilingual encoders."""

__version__ = "0.1.0"
