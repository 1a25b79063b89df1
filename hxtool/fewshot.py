"""fewshot: tune on n labelled sentences drawn at random (seeded), scoring before and after.

The default (`lang+head`) tunes the target language's embedding row and the language's own copy of
the task head (made from the shared head on first use), so nothing the checkpoint does for any other
language changes and the result can go back into the same checkpoint. `lang` tunes the row alone.
`all` also tunes the shared hypernetwork, heads and LayerNorms, which changes every language, so it
must write to a new checkpoint folder.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from pathlib import Path

from hxtool.store.checkpoint import CheckpointMeta
from hxtool.config import TrainConfig
from hxtool.data.align import encode_sentences
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.data.sources import TaggingStream
from hxtool.errors import HxError
from hxtool.metrics import Score
from hxtool.model.hyperx import HyperX
from hxtool.store.session import save_model
from hxtool.tagging import predict_tags, score_tags
from hxtool.resume import discard_state, resume_dir
from hxtool.train import Resumable, train

TUNE_MODES = ("lang", "lang+head", "all")
# Constant learning rates: one embedding row needs a larger step than shared weights.
FEWSHOT_LR = 5e-3  # the language row's rate
ALL_SHARED_LR = 1e-4  # hypernetwork and LayerNorms with --tune all


@dataclass
class FewshotReport:
    n: int
    indices: list[int]
    before: Score | None
    after: Score | None
    steps: int
    output: Path


def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """n distinct sentence indices drawn at random with the seed (never simply the first n)."""
    if n <= 0:
        raise HxError(f"--n must be at least 1, got {n}")
    if n > total:
        raise HxError(f"--n {n} is larger than the training file ({total} sentences)")
    return sorted(random.Random(seed).sample(range(total), n))


def fewshot(model: HyperX, meta: CheckpointMeta, checkpoint: Path, task: str, lang: str, train_data: LabelledData,
            eval_data: LabelledData | None, n: int, config: TrainConfig, tune: str = "lang+head",
            output: Path | None = None, quiet: bool = False, save_every: int = 0,
            resume: bool = False) -> FewshotReport:
    if tune not in TUNE_MODES:
        raise HxError(f"--tune must be one of {', '.join(TUNE_MODES)}, got {tune!r}")
    registry = model.registry
    labels = registry.task(task).labels
    lang_index = registry.lang_index(lang)
    output = Path(output) if output is not None else Path(checkpoint)
    if tune == "all" and output.resolve() == Path(checkpoint).resolve():
        raise HxError("--tune all changes parameters shared by every language; "
                      "write the result to a new folder with --output DIR")
    if eval_data is not None and eval_data.path.resolve() == train_data.path.resolve():
        raise HxError("--eval is the same file as --train: few-shot never trains on the evaluation file")
    indices = sample_indices(len(train_data), n, config.seed)
    shots = train_data.subset(indices)
    chunks = encode_sentences(model.backbone.tokenizer, shots.words, config.max_length, label_ids(shots, labels))

    def evaluate() -> Score | None:
        if eval_data is None:
            return None
        return score_tags(task, eval_data.tags, predict_tags(model, task, lang, eval_data.words,
                                                             pooling=config.pooling))

    before = evaluate()
    steps = config.steps or 1
    model.hypernet.embeddings.train_language_row(lang_index, model.hypernet.embeddings.language.weight[lang_index])
    # With "all", hypernet.parameters() already includes the free-standing row.
    params = model.set_trainable("all" if tune == "all" else "lang")
    if tune == "lang+head":
        params += list(model.own_head(task, lang).parameters())
        for param in params:
            param.requires_grad_(True)
    stream = TaggingStream(task, lang, chunks, config.batch_size, model.backbone.tokenizer.pad_token_id, config.seed)
    signature = {"command": "fewshot", "task": task, "lang": lang, "n": n, "tune": tune,
                 "train": dataclasses.asdict(config), "sentences": indices}
    # The language row moves at the few-shot rate, heads at the head rate, shared weights (tune=all)
    # at the pretraining rate of 1e-4: a higher one there would wreck every generated adapter.
    rates = {id(p): config.head_lr for p in model.heads.parameters()}
    if tune == "all":
        rates.update({id(p): ALL_SHARED_LR for p in params})
        rates.update({id(p): config.head_lr for p in [*model.heads.parameters(), *model.mlm_head.parameters()]})
    rates[id(model.hypernet.embeddings.row)] = config.lr
    train(model, [stream], params, config, description=f"fewshot {task}/{lang} n={n}", quiet=quiet,
          resumable=Resumable(resume_dir(output), save_every, resume, signature), rates=rates)
    model.hypernet.embeddings.commit_language_row()
    after = evaluate()
    registry.language(lang).fewshot.append({"task": task, "n": n, "seed": config.seed, "tune": tune,
                                            "steps": steps, "train": str(train_data.path)})
    event = {"command": "fewshot", "task": task, "lang": lang, "n": n, "tune": tune,
             "train": dataclasses.asdict(config), "sentences": indices,
             "before": before.value if before else None, "after": after.value if after else None}
    save_model(model, meta, output, event)
    discard_state(output)
    return FewshotReport(n, indices, before, after, steps, output)


def fewshot_steps(n: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(n / batch_size)
