"""hxtool: Hyper-X hypernetwork adapters for bringing low-resource languages into multilingual encoders."""

__version__ = "0.1.0"
__all__ = ["Checkpoint", "load", "__version__"]


def __getattr__(name: str):
    # The API needs torch and transformers: load it on first use so `import hxtool` (and the CLI's
    # --help) stays light.
    if name in ("Checkpoint", "load"):
        from hxtool import api

        return getattr(api, name)
    raise AttributeError(f"module 'hxtool' has no attribute {name!r}")
