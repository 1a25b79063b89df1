"""hxtool.store: the checkpoint lock makes a second writer wait, saying so."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hxtool.store.checkpoint import checkpoint_lock


def test_a_second_writer_waits_for_the_first_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    events: list[str] = []
    held = threading.Event()

    def first() -> None:
        with checkpoint_lock(folder):
            held.set()
            time.sleep(0.5)
            events.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    with checkpoint_lock(folder, notify=events.append):
        events.append("second in")
    thread.join()
    assert len(events) == 3 and events[0].startswith("waiting for another hxtool command that is writing")
    assert events[1:] == ["first done", "second in"]
    with checkpoint_lock(folder, notify=events.append):  # free again: no waiting message
        pass
    assert len(events) == 3
