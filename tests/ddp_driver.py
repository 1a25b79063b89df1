"""Run the hxtool CLI under torchrun and save every rank's learned tensors after training (for test_training)."""

import sys
from pathlib import Path

from safetensors.torch import save_file

import hxtool.pretrain as pretrain_module
from hxtool.cli import app
from hxtool.training import distributed

dump = Path(sys.argv[1])
original = pretrain_module.train


def train_and_dump(module, *args, **kwargs):
    result = original(module, *args, **kwargs)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.learned_state_dict().items()}
    save_file(tensors, str(dump / f"rank{distributed.rank()}.safetensors"))
    return result


pretrain_module.train = train_and_dump
app(sys.argv[2:], prog_name="hxtool")
