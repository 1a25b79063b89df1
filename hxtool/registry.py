"""Ordered tasks (with label lists) and languages (with provenance): names <-> embedding rows.

Row order is the embedding order in the hypernetwork, so entries are only ever appended.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hxtool.config import MLM_TASK
from hxtool.errors import HxError

# ISO 639-1/-2/-3 codes with an optional script or region subtag (e.g. "zh", "ug", "sr-Latn", "pt_BR").
LANG_CODE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")


def check_language_code(code: str) -> str:
    if not LANG_CODE.match(code):
        raise HxError(
            f"{code!r} is not a plausible ISO 639 language code (two or three lower-case letters, "
            "optionally with a subtag such as 'sr-Latn')"
        )
    return code


@dataclass
class TaskInfo:
    name: str
    labels: list[str] = field(default_factory=list)  # empty for MLM

    @property
    def is_mlm(self) -> bool:
        return self.name == MLM_TASK


@dataclass
class LanguageInfo:
    code: str
    source: str  # "recipe", "add-language", "import"
    corpus: dict[str, Any] | None = None  # {"path", "sha256", "lines"} of the MLM corpus, when any
    labelled: list[str] = field(default_factory=list)  # tasks with labelled data seen in training
    steps: int = 0  # training steps that updated this language's embedding
    init: str | None = None  # how a language added later was initialised
    fewshot: list[dict[str, Any]] = field(default_factory=list)  # few-shot tunings applied
    own_heads: list[str] = field(default_factory=list)  # tasks for which few-shot gave it its own head copy
    # Per task, labels its own head adds after the task's (few-shot data held tags the task lacked).
    extra_labels: dict[str, list[str]] = field(default_factory=dict)
    mlm_loss: float | None = None  # smoothed MLM loss at the end of its training, a check on the MLM head
    lora: dict[str, Any] | None = None  # {"rank", "targets", "alpha"} of its own low-rank encoder updates
    imported: dict[str, Any] | None = None  # import-language: {"file", "sha256", "provenance": the exporter's entry}


@dataclass
class Registry:
    tasks: list[TaskInfo] = field(default_factory=list)
    languages: list[LanguageInfo] = field(default_factory=list)

    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def language_codes(self) -> list[str]:
        return [lang.code for lang in self.languages]

    def pretrained_languages(self) -> list[str]:
        """The languages pretrain-mlm learned (labelled or raw text), not those added or imported since."""
        return [lang.code for lang in self.languages if lang.source == "recipe"]

    def task_index(self, name: str) -> int:
        for i, task in enumerate(self.tasks):
            if task.name == name:
                return i
        known = ", ".join(t for t in self.task_names() if t != MLM_TASK)
        raise HxError(f"unknown task {name!r}; this checkpoint knows: {known or 'none'}")

    def task(self, name: str) -> TaskInfo:
        return self.tasks[self.task_index(name)]

    def labels(self, task: str, lang: str | None = None) -> list[str]:
        """The labels a language's head for `task` predicts: the task's, then any the language added."""
        labels = self.task(task).labels
        if lang is None or not self.has_language(lang):
            return list(labels)
        return labels + self.language(lang).extra_labels.get(task, [])

    def lang_index(self, code: str) -> int:
        for i, lang in enumerate(self.languages):
            if lang.code == code:
                return i
        known = ", ".join(self.language_codes())
        raise HxError(
            f"unknown language {code!r}; this checkpoint knows: {known}. "
            f"Add it from raw text with: hxtool add-language --code {code} --corpus FILE"
        )

    def language(self, code: str) -> LanguageInfo:
        return self.languages[self.lang_index(code)]

    def has_language(self, code: str) -> bool:
        return code in self.language_codes()

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": [asdict(t) for t in self.tasks], "languages": [asdict(lang) for lang in self.languages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Registry":
        return cls(
            tasks=[TaskInfo(**t) for t in data["tasks"]],
            languages=[LanguageInfo(**lang) for lang in data["languages"]],
        )
