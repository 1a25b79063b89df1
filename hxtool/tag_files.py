"""Old import path: whole-file tagging now lives in hxtool.tagging beside the prediction loop."""

from hxtool.tagging import FORMATS, TaggedFile, tag_file  # noqa: F401
