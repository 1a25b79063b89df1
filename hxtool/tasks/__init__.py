"""Task types by name: a new kind of tagging task is one file here plus one `register` call.

    from hxtool.tasks import register
    from hxtool.tasks.conllu_column import ConlluColumnTask
    register(ConlluColumnTask(name="xpos", metric_name="XPOS accuracy", column=4, description="..."))
"""

from __future__ import annotations

from hxtool.errors import HxError
from hxtool.tasks.base import TaskType
from hxtool.tasks.ner import NER
from hxtool.tasks.pos import POS

__all__ = ["TaskType", "get_task", "register", "task_names", "unregister"]

_TASKS: dict[str, TaskType] = {}


def register(task: TaskType) -> TaskType:
    """Make a task type known to every command, reader, writer and metric."""
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise HxError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    _TASKS.pop(name, None)


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


def get_task(name: str) -> TaskType:
    try:
        return _TASKS[name]
    except KeyError:
        raise HxError(f"unknown task type {name!r} (known: {', '.join(_TASKS)})") from None


register(POS)
register(NER)
