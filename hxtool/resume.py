"""Resumable training state: everything a run needs to continue exactly where it stopped.

Saved every N steps beside the output checkpoint (`<output>.resume/`), atomically, as safetensors
(parameters, optimizer moments, RNG state) and JSON (step, scheduler, stream positions). A resumed
run replays the data streams to the same position, so on CPU it ends with the same weights as an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hxtool.store.atomic import atomic_folder
from hxtool.errors import HxError

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


def resume_dir(output: Path) -> Path:
    output = Path(output)
    return output.parent / f"{output.name}.resume"


@dataclass
class TrainState:
    step: int
    signature: dict[str, Any]  # what the run was started with; a resume must match it
    scheduler: dict[str, Any]
    batches: dict[str, int]  # "task/lang" -> batches drawn so far
    extra: dict[str, Any] = field(default_factory=dict)  # loop bookkeeping (losses, evaluations)


def save_state(folder: Path, state: TrainState, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
               best: list[torch.Tensor] | None) -> None:
    tensors: dict[str, torch.Tensor] = {"rng": torch.get_rng_state()}
    for i, param in enumerate(params):
        tensors[f"param.{i}"] = param.detach()
        for key, value in optimizer.state.get(param, {}).items():
            tensors[f"optim.{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    for i, value in enumerate(best or []):
        tensors[f"best.{i}"] = value
    with atomic_folder(folder) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / STATE_TENSORS))
        record = {"step": state.step, "signature": state.signature, "scheduler": state.scheduler,
                  "batches": state.batches, "extra": state.extra, "has_best": best is not None}
        (tmp / STATE_JSON).write_text(json.dumps(record, indent=1), encoding="utf-8")


def load_state(folder: Path, signature: dict[str, Any], params: list[torch.nn.Parameter],
               optimizer: torch.optim.Optimizer) -> tuple[TrainState, list[torch.Tensor] | None]:
    """Restore parameters, optimizer moments and the RNG; return the loop's position."""
    if not (folder / STATE_JSON).is_file() or not (folder / STATE_TENSORS).is_file():
        raise HxError(f"nothing to resume: no saved training state in {folder}")
    record = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
    if record["signature"] != signature:
        changed = sorted(k for k in set(signature) | set(record["signature"])
                         if signature.get(k) != record["signature"].get(k))
        raise HxError(f"--resume: this run differs from the interrupted one in {', '.join(changed)}; "
                      "repeat the original command with --resume")
    tensors = load_file(str(folder / STATE_TENSORS))
    with torch.no_grad():
        for i, param in enumerate(params):
            saved = tensors[f"param.{i}"]
            if saved.shape != param.shape:
                raise HxError(f"--resume: saved state in {folder} does not fit this model")
            param.copy_(saved)
            moments = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"optim.{i}.")}
            if moments:
                optimizer.state[param] = {k: v.clone() for k, v in moments.items()}
    torch.set_rng_state(tensors["rng"])
    best = None
    if record.get("has_best"):
        best = [tensors[f"best.{i}"] for i in range(len(params))]
    state = TrainState(record["step"], record["signature"], record["scheduler"], record["batches"], record["extra"])
    return state, best


def discard_state(output: Path) -> None:
    """The run finished and its checkpoint is saved: the resumable state is no longer needed."""
    shutil.rmtree(resume_dir(output), ignore_errors=True)
