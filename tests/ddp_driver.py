"""Run the hxtool CLI under torchrun and save every rank's learned tensors after training (for test_training).

With $HXTOOL_TEST_STOP_AT=STEP every rank stops as Ctrl-C would, right after the state of STEP is saved.
"""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

import hxtool.workflows.pretrain as pretrain_module
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
if os.environ.get("HXTOOL_TEST_STOP_AT"):
    import hxtool.training.loop as loop_module

    stop_at, save_state = int(os.environ["HXTOOL_TEST_STOP_AT"]), loop_module.save_state

    def save_then_stop(folder, state, *args, **kwargs):
        save_state(folder, state, *args, **kwargs)
        if state.step == stop_at:
            raise KeyboardInterrupt

    loop_module.save_state = save_then_stop
app(sys.argv[2:], prog_name="hxtool")
