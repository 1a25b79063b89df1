"""add-language: learn one new language embedding from raw text by MLM; nothing else changes.

With `--adapt-encoder` a second stage follows: the language's own low-rank encoder updates (the same shape
fewshot's `--tune lang+head+lora` makes, so few-shot tunes them further) learn the text by MLM too, anchored
so that the taggers still read what they read before (training/objectives.anchored_mlm_loss). Other
languages never see those updates.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hxtool.config import TrainConfig
from hxtool.data.corpus import corpus_info
from hxtool.data.sources import MlmStream
from hxtool.errors import HxError
from hxtool.model.hyperx import HyperX
from hxtool.model.lora import LoraOptions
from hxtool.registry import LanguageInfo, check_language_code
from hxtool.store.session import save_model
from hxtool.training.loop import Resumable, TrainResult, param_groups, train
from hxtool.training.objectives import anchored_mlm_loss, hyperx_loss
from hxtool.training.resume import discard_state, first_stage_saved, later_stage_output, resume_dir
from hxtool.store.checkpoint import CheckpointMeta

# A single 64-dim row moves slowly at the pretraining rate; this rate moved it well in our runs.
ADD_LANGUAGE_LR = 2e-3


@dataclass
class EncoderAdaptation:
    """The second stage (`--adapt-encoder`): `steps` of anchored MLM on the language's own encoder updates."""

    steps: int = 100
    anchor: float = 1.0  # weight of the taggers' KL term; 0 is plain MLM, which wrecked tagging in our runs
    lora: LoraOptions = field(default_factory=lambda: LoraOptions(extra_teacher_lrs=()))  # one round: no teachers

    def record(self) -> dict:
        """As JSON gives it back, or a resumed run would never match the saved signature."""
        return {**dataclasses.asdict(self), "lora": self.lora.record()}

    def validate(self) -> None:
        if self.steps < 1:
            raise HxError(f"--adapt-steps must be at least 1, got {self.steps}")
        if self.anchor < 0:
            raise HxError(f"--anchor must be 0 or more, got {self.anchor}")


@dataclass
class AddLanguageReport:
    code: str
    index: int
    result: TrainResult
    output: Path
    vocab_size: int
    meta: CheckpointMeta | None = None  # what was saved: pass it on to a next command in the same process
    adapted: TrainResult | None = None  # the --adapt-encoder stage, when it ran

    @property
    def head_looks_untrained(self) -> bool:
        """An MLM loss near ln(vocabulary) means the MLM head predicts nothing: the row learned nothing."""
        return self.result.final_loss > 0.9 * math.log(self.vocab_size)


def initial_row(model: HyperX, init: str) -> torch.Tensor:
    """`mean` of the pretrained languages' rows, or a copy of one language's row. Rows that add-language or
    import brought in stay out of the mean, so a new language starts from the same row whatever was added
    before it (a checkpoint with no pretrained row left, every one overwritten, takes the mean of all)."""
    table = model.hypernet.embeddings.language.weight.detach()
    if init == "mean":
        pretrained = [model.registry.lang_index(code) for code in model.registry.pretrained_languages()]
        return table[pretrained].mean(0) if pretrained else table.mean(0)
    return table[model.registry.lang_index(init)].clone()


def add_language(model: HyperX, meta: CheckpointMeta, code: str, corpus: Path, output: Path,
                 config: TrainConfig, init: str = "mean", overwrite: bool = False,
                 quiet: bool = False, save_every: int = 0, resume: bool = False,
                 precision: str | None = None, adapt: EncoderAdaptation | None = None) -> AddLanguageReport:
    check_language_code(code)
    if adapt is not None:
        adapt.validate()
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
    row_saved = first_stage_saved(output, _adapt_stage_output(output))
    resumable = Resumable(resume_dir(output), save_every, resume and row_saved, signature)
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
    adapted = None
    if adapt is not None:
        stream = MlmStream(code, Path(corpus), info.lines, model.backbone.tokenizer, config.batch_size,
                           config.max_length, config.mlm_probability, config.seed + 1)  # other masks than the row's
        record = adapt.record()
        adapted = _adapt_encoder(model, code, stream, config, adapt, {**signature, "adapt": record},
                                 output, quiet, save_every, resume, precision)
        event["adapt_encoder"] = {**record, "final_loss": adapted.final_loss}
    saved = save_model(model, meta, output, event, world_size=result.world_size, precision=result.precision)
    discard_state(output)
    discard_state(_adapt_stage_output(output))
    return AddLanguageReport(code, index, result, output, model.mlm_head.bias.shape[0], saved, adapted)


def _adapt_stage_output(output: Path) -> Path:
    return later_stage_output(output, "adapt-encoder")


def _adapt_encoder(model: HyperX, code: str, stream: MlmStream, config: TrainConfig, adapt: EncoderAdaptation,
                   signature: dict, output: Path, quiet: bool, save_every: int, resume: bool,
                   precision: str | None) -> TrainResult:
    """The language's own low-rank encoder updates learn its text by anchored MLM; the row stays as trained."""
    for param in model.parameters():
        param.requires_grad_(False)
    torch.manual_seed(config.seed)  # the down-projections' random start
    lora = model.own_lora(code, adapt.lora.spec(model.backbone.num_layers))
    params = list(lora.parameters())
    for param in params:
        param.requires_grad_(True)
    folder = resume_dir(_adapt_stage_output(output))
    return train(model, anchored_mlm_loss(model, code, adapt.anchor), [stream], param_groups(params, adapt.lora.lr),
                 dataclasses.replace(config, steps=adapt.steps), description=f"adapt-encoder {code}", quiet=quiet,
                 resumable=Resumable(folder, save_every, resume and folder.is_dir(), signature), precision=precision)
