"""add-language: learn one new language embedding from raw text by MLM; nothing else changes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from hxtool.config import TrainConfig
from hxtool.data.corpus import corpus_info
from hxtool.data.sources import MlmStream
from hxtool.errors import HxError
from hxtool.model.hyperx import HyperX
from hxtool.registry import LanguageInfo, check_language_code
from hxtool.store.session import save_model
from hxtool.training.loop import Resumable, TrainResult, param_groups, train
from hxtool.training.objectives import hyperx_loss
from hxtool.training.resume import discard_state, resume_dir
from hxtool.store.checkpoint import CheckpointMeta

# A single 64-dim row moves slowly at the pretraining rate; this rate moved it well in our runs.
ADD_LANGUAGE_LR = 2e-3


@dataclass
class AddLanguageReport:
    code: str
    index: int
    result: TrainResult
    output: Path
    vocab_size: int
    meta: CheckpointMeta | None = None  # what was saved: pass it on to a next command in the same process

    @property
    def head_looks_untrained(self) -> bool:
        """An MLM loss near ln(vocabulary) means the MLM head predicts nothing: the row learned nothing."""
        return self.result.final_loss > 0.9 * math.log(self.vocab_size)


def initial_row(model: HyperX, init: str) -> torch.Tensor:
    """`mean` of the known languages' rows, or a copy of one language's row."""
    table = model.hypernet.embeddings.language.weight.detach()
    if init == "mean":
        return table.mean(0)
    return table[model.registry.lang_index(init)].clone()


def add_language(model: HyperX, meta: CheckpointMeta, code: str, corpus: Path, output: Path,
                 config: TrainConfig, init: str = "mean", overwrite: bool = False,
                 quiet: bool = False, save_every: int = 0, resume: bool = False,
                 precision: str | None = None) -> AddLanguageReport:
    check_language_code(code)
    registry = model.registry
    if registry.has_language(code) and not overwrite:
        raise HxError(f"language {code!r} is already in the checkpoint; pass --overwrite to train it anew")
    if init != "mean" and not registry.has_language(init):
        raise HxError(f"--init {init!r}: not a language of this checkpoint "
                      f"(use 'mean' or one of {', '.join(registry.language_codes())})")
    info = corpus_info(corpus)
    index = registry.lang_index(code) if registry.has_language(code) else len(registry.languages)
    stream = MlmStream(code, Path(corpus), info.lines, model.backbone.tokenizer, config.batch_size,
                       config.max_length, config.mlm_probability, config.seed)
    signature = {"command": "add-language", "lang": code, "corpus": info.sha256, "init": init,
                 "train": config.signature()}
    resumable = Resumable(resume_dir(output), save_every, resume, signature)
    # The row is written into the table only if training finishes; an error leaves the model as it was.
    with model.hypernet.embeddings.language_row(index, initial_row(model, init)):
        params = model.set_trainable("lang")
        result = train(model, hyperx_loss(model, config.pooling, {code: index}), [stream],
                       param_groups(params, config.lr), config, description=f"add-language {code}", quiet=quiet,
                       resumable=resumable, precision=precision)
    if index < len(registry.languages):
        model.drop_own_heads(code)  # tuned for the old row: they go with it
    entry = LanguageInfo(code=code, source="add-language",
                         corpus={"path": str(corpus), "sha256": info.sha256, "lines": info.lines},
                         steps=result.steps, init=init, mlm_loss=result.final_loss)
    if index < len(registry.languages):
        registry.languages[index] = entry
    else:
        registry.languages.append(entry)
    event = {"command": "add-language", "lang": code, "steps": result.steps, "init": init,
             "train": dataclasses.asdict(config), "final_loss": result.final_loss}
    saved = save_model(model, meta, output, event, world_size=result.world_size, precision=result.precision)
    discard_state(output)
    return AddLanguageReport(code, index, result, output, model.mlm_head.bias.shape[0], saved)
