"""fewshot: tune on n labelled sentences drawn at random (seeded), scoring before and after.

`lang+head` tunes the target language's embedding row and the language's own copy of the task head
(made from the shared head on first use), so nothing the checkpoint does for any other language changes
and the result can go back into the same checkpoint; `lang+head+lora` adds the language's own low-rank
encoder updates; `auto` (the default) picks between those two by n. `lang` tunes the row alone.
`all` also tunes the shared hypernetwork, heads and LayerNorms, which changes every language, so it
must write to a new checkpoint folder.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from hxtool.store.checkpoint import CheckpointMeta
from hxtool.config import TrainConfig
from hxtool.data.align import encode_sentences
from hxtool.data.labelled import LabelledData, label_ids, new_labels
from hxtool.data.sources import TaggingStream
from hxtool.errors import HxError
from hxtool.evaluation.metrics import Score
from hxtool.model.hyperx import HyperX
from hxtool.model.lora import LoraOptions, check_targets
from hxtool.store.session import save_model
from hxtool.tagging import predict_tags, score_tags
from hxtool.training.loop import Resumable, copy_into, param_groups, train
from hxtool.training.objectives import hyperx_loss
from hxtool.training.resume import discard_state, first_stage_saved, later_stage_output, resume_dir
from hxtool.workflows.self_training import (MAX_WORDS, MIN_WORDS, SelfTraining, Teachers, language_corpus, mixed,
                                            pseudo_labelled, sample_raw_sentences)

TUNE_MODES = ("lang", "lang+head", "lang+head+lora", "all", "auto")
# --tune auto (the default): the row and a head copy below this many sentences, plus low-rank encoder
# updates from it on. Measured (BENCHMARKS.md, issue 10): at n = 50 the updates win (mt +2.6, ug +0.6,
# fo +0.2 UPOS over lang+head, 3 seeds, H200); at n = 5-10 they are level to mixed (fo -1.1 at n = 10,
# mt -1.9 at n = 5 in a 1-seed CPU run), so below 20 the 26 kB row + head is kept.
DEFAULT_TUNE = "auto"
AUTO_LORA_FROM = 20
# Constant learning rates: one embedding row needs a larger step than shared weights.
FEWSHOT_LR = 5e-3  # the language row's rate
ALL_SHARED_LR = 1e-4  # hypernetwork and LayerNorms with --tune all


def default_self_training(tune: str, n: int) -> bool:
    """Whether fewshot self-trains when not told: `auto` from AUTO_LORA_FROM sentences on, where it was
    measured to help (BENCHMARKS.md); below that the tagger is weaker and it was not measured."""
    return tune == "auto" and n >= AUTO_LORA_FROM


def resolve_self_training(given: SelfTraining | None, tune: str, n: int) -> SelfTraining:
    """What fewshot will do for a second round: `given`, else the default for the (unresolved) mode and n."""
    if given is not None:
        return given
    return SelfTraining(sentences=SelfTraining.sentences if default_self_training(tune, n) else 0)


def resolve_tune(tune: str, n: int) -> str:
    """The mode `tune` means for n sentences: `auto` picks by n, every other mode is itself."""
    if tune == "auto":
        return "lang+head+lora" if n >= AUTO_LORA_FROM else "lang+head"
    return tune


@dataclass
class FewshotReport:
    n: int
    indices: list[int]
    before: Score | None
    after: Score | None
    steps: int
    output: Path
    tune: str  # the mode that ran (`auto` resolved)
    added_labels: list[str] = dataclasses.field(default_factory=list)  # labels the language's head gained
    self_training: dict | None = None  # the second round on pseudo-labelled raw text, when one ran
    self_training_note: str | None = None  # why the default second round did not run
    meta: CheckpointMeta | None = None  # what was saved: pass it on to a next command in the same process


def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """n distinct sentence indices drawn at random with the seed (never simply the first n)."""
    if n <= 0:
        raise HxError(f"--n must be at least 1, got {n}")
    if n > total:
        raise HxError(f"--n {n} is larger than the training file ({total} sentences)")
    return sorted(random.Random(seed).sample(range(total), n))


def fewshot(model: HyperX, meta: CheckpointMeta, checkpoint: Path, task: str, lang: str, train_data: LabelledData,
            eval_data: LabelledData | None, n: int, config: TrainConfig, tune: str = DEFAULT_TUNE,
            output: Path | None = None, quiet: bool = False, save_every: int = 0,
            resume: bool = False, strict_labels: bool = False, precision: str | None = None,
            lora: LoraOptions | None = None, self_training: SelfTraining | None = None,
            keep_encoder_updates: bool = False) -> FewshotReport:
    """Tune on n sentences of `train_data`. Labels the task lacks extend the language's own head (listed
    in the report's `added_labels`) unless `strict_labels`, which refuses them as before. With
    `tune="lang+head+lora"` the language also gets its own low-rank encoder updates (`lora`).
    `self_training` adds a second round on the shots plus raw text the tuned model labelled
    (self_training.py); by default `auto` does that from 20 sentences on, when the language's corpus is there.
    Encoder updates that add-language --adapt-encoder made are dropped first (they serve zero-shot; few-shot
    from them scored lower on ug, BENCHMARKS.md) unless `keep_encoder_updates`; updates an earlier few-shot
    tuned are tuned further."""
    if tune not in TUNE_MODES:
        raise HxError(f"--tune must be one of {', '.join(TUNE_MODES)}, got {tune!r}")
    lora = lora or LoraOptions()
    lora_spec: dict = {}
    if tune in ("lang+head+lora", "auto"):  # auto at n < 20 uses none, but a typo should not wait for n = 20
        check_targets(lora.targets)
        lora_spec = lora.spec(model.backbone.num_layers)  # refuses layers it lacks
        if lora.rank < 1:
            raise HxError(f"--lora-rank must be at least 1, got {lora.rank}")
        if lora.lr <= 0 or (lora.teacher_lr is not None and lora.teacher_lr <= 0) or \
                any(rate <= 0 for rate in lora.extra_teacher_lrs):
            raise HxError("--lora-lr, --lora-teacher-lr and --extra-teacher-lr must be above 0")
    asked = self_training is not None
    self_training = resolve_self_training(self_training, tune, n)
    self_training.validate()
    tune = resolve_tune(tune, n)
    corpus = language_corpus(model, lang, self_training.corpus) if self_training.sentences else None
    note = None
    if self_training.sentences and corpus is None:
        if asked:
            raise HxError(f"self-training needs raw text of {lang}: the corpus add-language registered is not "
                          "there; pass --raw FILE (or --self-train 0)")
        note = f"no self-training: the raw text of {lang} that add-language registered is not there"
        self_training = SelfTraining(sentences=0)
    registry = model.registry
    labels = registry.labels(task, lang)
    lang_index = registry.lang_index(lang)
    output = Path(output) if output is not None else Path(checkpoint)
    if tune == "all" and output.resolve() == Path(checkpoint).resolve():
        raise HxError("--tune all changes parameters shared by every language; "
                      "write the result to a new folder with --output DIR")
    if eval_data is not None and eval_data.path.resolve() == train_data.path.resolve():
        raise HxError("--eval is the same file as --train: few-shot never trains on the evaluation file")
    # add-language's own updates (no few-shot has tuned them): few-shot starts as it would without them
    restart_updates = lang in model.lora and not registry.language(lang).fewshot and not keep_encoder_updates
    if tune == "lang+head+lora" and lang in model.lora and not restart_updates:
        existing = model.lora[lang].spec()
        if existing != lora_spec:
            where = f"layers {','.join(map(str, existing['layers']))}" if "layers" in existing else "every layer"
            raise HxError(f"{lang} already has its own low-rank updates (rank {existing['rank']} on "
                          f"{','.join(existing['targets'])} in {where}); tune them again with those "
                          "--lora-rank/--lora-targets/--lora-layers, "
                          f"or start the language over with add-language --overwrite")
    indices = sample_indices(len(train_data), n, config.seed)
    shots = train_data.subset(indices)
    if strict_labels:
        label_ids(shots, labels)  # refuse an unknown label, naming file and line, before any work
    added = [] if strict_labels else new_labels(task, shots, labels)
    if added and tune == "lang":
        raise HxError(f"the few-shot data holds labels the task lacks ({', '.join(added)}); --tune lang "
                      "trains no head to learn them: use --tune lang+head (or --strict-labels to refuse)")

    def evaluate() -> Score | None:
        if eval_data is None:
            return None
        return score_tags(task, eval_data.tags, predict_tags(model, task, lang, eval_data.words,
                                                             pooling=config.pooling))

    before = evaluate()  # the language as it stands, add-language's updates included
    if restart_updates:
        model.drop_lora(lang)
    if added:
        model.extend_labels(task, lang, added)  # the language's own head only
        labels = registry.labels(task, lang)
    chunks = encode_sentences(model.backbone.tokenizer, shots.words, config.max_length, label_ids(shots, labels))
    steps = config.steps or 1
    stream = TaggingStream(task, lang, chunks, config.batch_size, model.backbone.tokenizer.pad_token_id, config.seed)
    signature = {"command": "fewshot", "task": task, "lang": lang, "n": n, "tune": tune,
                 "train": config.signature(), "sentences": indices}
    if tune == "lang+head+lora":
        signature["lora"] = lora.record()
    # The row is written back only if training finishes; an error leaves the table as it was.
    with model.hypernet.embeddings.language_row(lang_index, model.hypernet.embeddings.language.weight[lang_index]):
        # With "all", hypernet.parameters() already includes the free-standing row.
        params = model.set_trainable("all" if tune == "all" else "lang")
        if tune in ("lang+head", "lang+head+lora"):
            params += list(model.own_head(task, lang).parameters())
        lora_params: list = []
        if tune == "lang+head+lora":
            torch.manual_seed(config.seed)  # the down-projections' random start
            lora_params = list(model.own_lora(lang, lora_spec).parameters())
            params += lora_params
        for param in params:
            param.requires_grad_(True)
        # The language row moves at the few-shot rate, heads at the head rate, low-rank updates at their
        # own rate, shared weights (tune=all) at the pretraining rate of 1e-4: a higher one there would
        # wreck every generated adapter.
        rates = {id(p): config.head_lr for p in model.heads.parameters()}
        if tune == "all":
            rates.update({id(p): ALL_SHARED_LR for p in params})
            rates.update({id(p): config.head_lr for p in [*model.heads.parameters(), *model.mlm_head.parameters()]})
        rates[id(model.hypernet.embeddings.row)] = config.lr
        rates.update({id(p): lora.lr for p in lora_params})
        groups = param_groups(params, config.lr, rates)
        teaching = bool(lora_params and self_training.sentences)

        def first_round_groups(rate: float | None) -> list:  # the updates at a teacher's rate (None: lora.lr)
            return groups if rate is None else param_groups(params, config.lr, {**rates, **{id(p): rate
                                                                                            for p in lora_params}})

        first_groups = first_round_groups(lora.teacher_lr if teaching else None)
        teachers = None
        if teaching and lora.extra_teacher_lrs:
            teachers = _extra_teachers(model, task, lang, chunks, config, params, lora.extra_teacher_lrs,
                                       first_round_groups, quiet, precision)
        first_saved = first_stage_saved(output, _second_round_output(output))
        result = train(model, hyperx_loss(model, config.pooling), [stream], first_groups, config,
                       description=f"fewshot {task}/{lang} n={n}", quiet=quiet,
                       resumable=Resumable(resume_dir(output), save_every, resume and first_saved, signature),
                       precision=precision)
        second = None
        if self_training.sentences:  # a corpus is there: without one, sentences was set to 0 above
            second = _self_train(model, task, lang, shots, labels, corpus, self_training, config, groups, signature,
                                 output, quiet, save_every, resume, precision, teachers)
            if second is None:
                note = (f"no self-training: {corpus} has no line of {MIN_WORDS}-{MAX_WORDS} words to label "
                        "(one sentence a line is expected)")
    after = evaluate()
    registry.language(lang).fewshot.append({"task": task, "n": n, "seed": config.seed, "tune": tune,
                                            "steps": steps, "train": str(train_data.path),
                                            **({"self_trained": second["kept"]} if second else {})})
    event = {"command": "fewshot", "task": task, "lang": lang, "n": n, "tune": tune,
             "train": dataclasses.asdict(config), "sentences": indices, **({"lora": signature["lora"]}
                                                                         if "lora" in signature else {}),
             **({"self_training": second} if second else {}),
             "before": before.value if before else None, "after": after.value if after else None}
    saved = save_model(model, meta, output, event, world_size=result.world_size, precision=result.precision)
    discard_state(output)
    discard_state(_second_round_output(output))
    return FewshotReport(n, indices, before, after, steps, output, tune, added, self_training=second,
                         self_training_note=note, meta=saved)


def _second_round_output(output: Path) -> Path:
    return later_stage_output(output, "self-train")


def _extra_teachers(model: HyperX, task: str, lang: str, chunks: list, config: TrainConfig, params: list,
                    rates: tuple[float, ...], groups_at, quiet: bool, precision: str | None) -> Teachers:
    """The first round once more per rate, each from where it starts (seeded alike); the parameters are put back
    to that start after. Not resumable: a resumed run repeats them, and being seeded they come out the same."""
    start = [p.detach().clone() for p in params]
    states = []
    for rate in rates:
        stream = TaggingStream(task, lang, chunks, config.batch_size, model.backbone.tokenizer.pad_token_id,
                               config.seed)
        train(model, hyperx_loss(model, config.pooling), [stream], groups_at(rate), config, quiet=quiet,
              description=f"fewshot {task}/{lang}: teacher at {rate:g}", precision=precision)
        states.append([p.detach().clone() for p in params])
        copy_into(params, start)
    return Teachers(params, states)


def _self_train(model: HyperX, task: str, lang: str, shots: LabelledData, labels: list[str], corpus: Path | str,
                plan: SelfTraining, config: TrainConfig, groups: list, signature: dict, output: Path, quiet: bool,
                save_every: int, resume: bool, precision: str | None, teachers: Teachers | None = None) -> dict | None:
    """The second round: label raw sentences with the model tuned so far, keep the surest, tune again on
    them and the shots (same parameters and rates). Returns what it did, for the checkpoint's history."""
    raw = sample_raw_sentences(corpus, plan.sentences, config.seed)
    if not raw:
        return None
    pseudo = pseudo_labelled(model, task, lang, raw, plan.keep, config.pooling, config.max_length, plan.unsure_words,
                             teachers)
    words, ids = mixed(shots, pseudo, plan.shot_repeats, labels)
    chunks = encode_sentences(model.backbone.tokenizer, words, config.max_length, ids)
    second = dataclasses.replace(config, steps=plan.epochs * math.ceil(len(words) / config.batch_size))
    stream = TaggingStream(task, lang, chunks, second.batch_size, model.backbone.tokenizer.pad_token_id, second.seed)
    record = {"corpus": str(corpus), "labelled": len(raw), "kept": len(pseudo.data),
              "confidence": round(pseudo.confidence, 4),
              **({"unsure_words": plan.unsure_words} if plan.unsure_words else {}),
              "epochs": plan.epochs, "shot_repeats": plan.shot_repeats, "steps": second.steps}
    folder = resume_dir(_second_round_output(output))
    train(model, hyperx_loss(model, config.pooling), [stream], groups, second,
          description=f"self-training {task}/{lang} ({len(pseudo.data)} raw sentences)", quiet=quiet,
          resumable=Resumable(folder, save_every, resume and folder.is_dir(), {**signature, "self_training": record}),
          precision=precision)
    return record


def fewshot_steps(n: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(n / batch_size)
