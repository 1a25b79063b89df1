"""Resumable training state: everything a run needs to continue exactly where it stopped.

Saved every N steps beside the output checkpoint (`<output>.resume/`), atomically, as safetensors
(parameters, optimizer moments, per-step losses, best weights, RNG states) and JSON (step,
scheduler, optimizer hyper-parameters, stream positions, evaluations). The optimizer goes through
its own `state_dict()` / `load_state_dict()`, which puts every moment back on its parameter's
device. The RNG states of every rank (CPU, all CUDA devices, Python, NumPy) are gathered to rank 0,
which alone writes; each rank takes its own back on resume. A resumed run replays the data streams
to the same position, so on CPU it ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hxtool.store.atomic import atomic_folder
from hxtool.errors import HxError
from hxtool.training import distributed

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


def resume_dir(output: Path) -> Path:
    output = Path(output)
    return output.parent / f"{output.name}.resume"


def later_stage_output(output: Path, stage: str) -> Path:
    """The name a command's later training stage saves its resumable state under (`<output>.<stage>.resume`),
    beside the first stage's state, not inside it."""
    output = Path(output)
    return output.parent / f"{output.name}.{stage}"


def first_stage_saved(output: Path, later: Path) -> bool:
    """Whether --resume should resume a two-stage command's first stage: it saved, or the later stage did not.
    A first stage shorter than --save-every never saves; when only the later stage did, the first runs again
    (seeded, so the same) and the later one resumes."""
    return resume_dir(output).is_dir() or not resume_dir(later).is_dir()


@dataclass
class TrainState:
    step: int
    signature: dict[str, Any]  # what the run was started with; a resume must match it
    scheduler: dict[str, Any]
    batches: dict[str, int]  # "task/lang" -> batches drawn so far
    extra: dict[str, Any] = field(default_factory=dict)  # loop bookkeeping (evaluations, scaler)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's random generators: tensors (torch CPU and CUDA, NumPy's key) and JSON (the rest)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = state
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(key, dtype=np.int64))
    version, internal, py_gauss = random.getstate()
    record = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)],
              "python": [version, list(internal), py_gauss]}
    return tensors, record


def set_rng_state(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = record["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = record["python"]
    random.setstate((version, tuple(internal), py_gauss))


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in record["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    # JSON has no tuples: give back betas and other pairs as the optimizer made them.
    groups = [{k: v if k == "params" or not isinstance(v, list) else tuple(v) for k, v in group.items()}
              for group in record["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_state(folder: Path, state: TrainState, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
               best: list[torch.Tensor] | None, losses: torch.Tensor) -> None:
    """Called on every rank (the RNG gather is collective); rank 0 alone writes."""
    rng = distributed.gather(rng_state())
    if not distributed.is_main():
        return
    optim_tensors, optim_record = _flatten_optimizer(optimizer.state_dict())
    tensors: dict[str, torch.Tensor] = {"losses": losses, **optim_tensors}
    for i, param in enumerate(params):
        tensors[f"param.{i}"] = param.detach()
    for i, value in enumerate(best or []):
        tensors[f"best.{i}"] = value
    for r, (rng_tensors, _) in enumerate(rng):
        tensors.update({f"rng.{r}.{k}": v for k, v in rng_tensors.items()})
    with atomic_folder(folder) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / STATE_TENSORS))
        record = {"step": state.step, "signature": state.signature, "scheduler": state.scheduler,
                  "batches": state.batches, "extra": state.extra, "has_best": best is not None,
                  "optimizer": optim_record, "rng": [r for _, r in rng], "world_size": len(rng)}
        (tmp / STATE_JSON).write_text(json.dumps(record, indent=1), encoding="utf-8")


def load_state(folder: Path, signature: dict[str, Any], params: list[torch.nn.Parameter],
               optimizer: torch.optim.Optimizer) -> tuple[TrainState, list[torch.Tensor] | None, torch.Tensor]:
    """Restore parameters, optimizer state and this rank's RNG; return the loop's position,
    the best weights so far and the per-step losses."""
    if not (folder / STATE_JSON).is_file() or not (folder / STATE_TENSORS).is_file():
        raise HxError(f"nothing to resume: no saved training state in {folder}")
    record = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
    if record["signature"] != signature:
        changed = sorted(k for k in set(signature) | set(record["signature"])
                         if signature.get(k) != record["signature"].get(k))
        raise HxError(f"--resume: this run differs from the interrupted one in {', '.join(changed)}; "
                      "repeat the original command with --resume")
    if record.get("world_size", 1) != distributed.world_size():
        raise HxError(f"--resume: the interrupted run had {record.get('world_size', 1)} processes, this one has "
                      f"{distributed.world_size()}; resume with the same torchrun --nproc_per_node")
    tensors = load_file(str(folder / STATE_TENSORS))
    device = params[0].device if params else torch.device("cpu")
    with torch.no_grad():
        for i, param in enumerate(params):
            saved = tensors[f"param.{i}"]
            if saved.shape != param.shape:
                raise HxError(f"--resume: saved state in {folder} does not fit this model")
            param.copy_(saved)
    optimizer.load_state_dict(_unflatten_optimizer(tensors, record["optimizer"]))  # moments to each param's device
    me = distributed.rank()
    prefix = f"rng.{me}."
    set_rng_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, record["rng"][me])
    best = [tensors[f"best.{i}"].to(device) for i in range(len(params))] if record.get("has_best") else None
    state = TrainState(record["step"], record["signature"], record["scheduler"], record["batches"], record["extra"])
    return state, best, tensors["losses"].to(device)


def discard_state(output: Path) -> None:
    """The run finished and its checkpoint is saved: the resumable state is no longer needed."""
    shutil.rmtree(resume_dir(output), ignore_errors=True)
