"""Kept for imports from before 0.x: whole-file tagging now lives in hxtool.tagging."""

from hxtool.tagging import FORMATS, TaggedFile, tag_file  # noqa: F401
