"""Few-shot curves on POS: hxtool (Hyper-X) against full fine-tuning and MAD-X-style adapters.

Every system uses the same frozen-or-not base encoder (multilingual-e5-small by default), the same
source data (UD POS train files of the source languages + their raw text), the same raw text per
target, the same few-shot sentences (hxtool.workflows.fewshot.sample_indices(total, n, seed)) and the same
evaluation sentences. Compute is matched step for step:

  source stage     hxtool pretrain-mlm: S + A x len(sources) steps (POS and MLM batches, sampled)
                   MAD-X: A MLM steps per source language adapter (+ MLM head), then S task-adapter steps
                   full fine-tuning: S POS steps (no MLM: it has nothing to learn from raw text)
  new language     hxtool add-language: A MLM steps on the target's raw text (one embedding row)
                   MAD-X: A MLM steps for the target's language adapter (MLM head frozen)
                   full fine-tuning: nothing (zero-shot is the source model)
  n shots          every system: epochs x ceil(n / batch) steps at a constant rate, seeded by the seed

Usage:
  python benchmarks/fewshot_curves.py --quick          # ug, n in {0, 20}, 1 seed: minutes on 2 cores
  python benchmarks/fewshot_curves.py                  # mt, ug, fo; n in {0, 5, 10, 20, 50}; 3 seeds
  python benchmarks/fewshot_curves.py --device cuda    # the same on a GPU
  python benchmarks/fewshot_curves.py --systems madx --output madx.json     # one system per process, then
  python benchmarks/fewshot_curves.py --report hxtool.json madx.json full_ft.json --output all.json

Results (every raw score, stage timings, the cost table) go to benchmarks/results/fewshot_curves[_quick].json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hxtool.config import (
    SIZES,
    HyperConfig,
    LabelledSource,
    MlmSource,
    Recipe,
    TrainConfig,
)
from hxtool.data.labelled import LabelledData, read_labelled
from hxtool.model.lora import DEFAULT_LAYERS, DEFAULT_TARGETS
from hxtool.training.mixing import recipe_mlm_sources, scale_labelled, with_mlm_languages
from hxtool.workflows.fewshot import fewshot_steps, sample_indices
from hxtool.evaluation.metrics import upos_accuracy

SYSTEMS = ("hxtool", "madx", "full_ft")
# profile fields no baseline reads
HXTOOL_ONLY = ("tune_modes", "lora_rank", "lora_targets", "lora_layers", "lora_lr", "balanced", "pretrain_lr",
               "embedding_lr", "mlm_recipe", "adapt_encoder", "anchor", "adapt_steps")
# What a result file that predates an option ran with (low-rank updates covered every layer before lora_layers).
BEFORE_OPTION = {"lora_layers": "all", "adapt_encoder": False}
# Options that change n = 0 alone: few-shot starts add-language's encoder updates anew (since 2026-11-27), so a
# file's n > 0 cells merge with another's n = 0 cells of the same system whatever these were.
ZERO_SHOT_ONLY = ("adapt_encoder", "anchor", "adapt_steps")
# Options of the language's low-rank updates: they change only cells whose tuning mode had updates (`auto` from 20
# sentences), so such cells merge with another file's cells of the same system that had none.
LORA_ONLY = ("lora_rank", "lora_targets", "lora_layers", "lora_lr")
# Extra score rows: hxtool at n=0 with the untrained mean row instead of the learned one; MAD-X at n=0
# keeping a source language adapter.
DIAGNOSTICS = ("hxtool_meanrow", "madx_no_swap")

# Where each target's test file and few-shot pool live (fo: modern test, historical train as the pool,
# since fo_oft has no train split).
TARGETS: dict[str, tuple[str, str | None]] = {
    "mt": ("ud/mt_mudt/test.conllu", "ud/mt_mudt/train.conllu"),
    "ug": ("ud/ug_udt/test.conllu", "ud/ug_udt/train.conllu"),
    "fo": ("ud/fo_oft/test.conllu", "ud/fo_farpahc/train.conllu"),
    # Development languages for zero-shot choices (n = 0 only: no pool): neither sources nor the targets above,
    # so that a zero-shot rule is tried on them before it is judged on mt, ug and fo, not fitted to those three.
    "kk": ("ud/kk_ktb/test.conllu", None),
    "ta": ("ud/ta_ttb/test.conllu", None),
    "zh": ("ud/zh_gsd/test.conllu", None),
    "ar": ("ud/ar_pud/test.conllu", None),
}
SOURCES = {"en": "ud/en_ewt/train.conllu", "tr": "ud/tr_imst/train.conllu"}


@dataclass
class Profile:
    """How big a run is. `source_steps` (S) and `lang_steps` (A) as in the module docstring."""

    targets: tuple[str, ...]
    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    sources: tuple[str, ...] = ("en", "tr")
    source_steps: int = 500
    lang_steps: int = 150
    epochs: int = 20  # few-shot epochs over the n sentences
    batch_size: int = 16
    max_length: int = 128
    eval_limit: int = 0  # 0: the whole test file; else its first k sentences
    adapter_lr: float = 1e-3  # MAD-X static adapters (the paper's 1e-4 is for 100k+ steps)
    encoder_lr: float = 5e-5  # full fine-tuning
    head_lr: float = 5e-3  # every tagging head, and the MLM heads (hxtool's own default)
    pretrain_lr: float = 1e-4  # hxtool's hypernetwork in pretrain-mlm (train.lr)
    embedding_lr: float | None = None  # its task/language/layer embeddings (train.embedding_lr; None: pretrain_lr)
    base_model: str = "pypi:multilingual-e5-small"
    # hxtool's few-shot tuning modes, each its own system (`hxtool` = the default mode, else hxtool_<mode>)
    # (`auto` reuses lang+head's runs below n = 20; `lang+head+lora` below 20 would add ~15 CPU minutes)
    tune_modes: tuple[str, ...] = ("auto", "lang+head")
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    lora_layers: str = DEFAULT_LAYERS
    lora_lr: float = 1e-3
    # hxtool's pretraining draws S POS and 2A MLM batches in expectation (recipe weights on the POS pairs),
    # the split MAD-X gets; without it the temperature sampler gives POS only about half of S + 2A.
    balanced: bool = False
    # A recipe whose [[mlm]] languages (sources and targets left out) join hxtool's pretraining as MLM-only
    # languages: same steps, same POS share (POS pairs reweighted), the MLM steps spread over more rows.
    mlm_recipe: str | None = None
    # add-language --adapt-encoder: after its A row steps, A anchored MLM steps on the language's own encoder
    # updates (they change n = 0 alone: few-shot starts them anew), the anchor's weight `anchor`
    adapt_encoder: bool = False
    anchor: float = 1.0
    adapt_steps: int | None = None  # the stage's steps (None: A, as many as the row's)


PROFILES = {
    # One target, two points, one seed, very few steps: a smoke test of the whole comparison that
    # finishes in minutes; its numbers say little about any system.
    "quick": Profile(targets=("ug",), shots=(0, 20), seeds=(1,), source_steps=40, lang_steps=20, epochs=10,
                     max_length=64, eval_limit=300),
    # The whole suite, sized to fit 150 minutes on 2 CPU cores (BENCHMARKS.md says what it took). MLM steps
    # dominate on CPU (2.8 s at 16 x 128), hence max length 64 and A = 100.
    "full": Profile(targets=("mt", "ug", "fo"), shots=(0, 5, 10, 20, 50), seeds=(1, 2, 3), lang_steps=100,
                    max_length=64),
}


@dataclass
class Run:
    """Everything measured, written to JSON as is."""

    profile: dict[str, Any]
    meta: dict[str, Any]
    scores: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- helpers ----------------------------------------------------------------------------------------
def hardware() -> dict[str, Any]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"nproc": os.cpu_count(), "cpu": model, "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "gpu": gpu}


def disk_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Size on disk of `tensors` as one safetensors file: what storing a new language costs."""
    from safetensors.torch import save_file

    if not tensors:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
        return path.stat().st_size


def eval_data(data_dir: Path, target: str, limit: int) -> LabelledData:
    data = read_labelled("pos", data_dir / TARGETS[target][0])
    return data.subset(list(range(min(limit, len(data))))) if limit else data


def target_pool(data_dir: Path, target: str) -> LabelledData | None:
    """The target's labelled pool (its train file), None for a development language (it has none)."""
    pool = TARGETS[target][1]
    return read_labelled("pos", data_dir / pool) if pool else None


def shot_pool(data_dir: Path, target: str, profile: Profile) -> LabelledData | None:
    """The target's few-shot pool, or None where the profile asks for n = 0 only (main refuses n > 0 for a
    target without one)."""
    return target_pool(data_dir, target) if any(n > 0 for n in profile.shots) else None


def shots_for(pool: LabelledData, n: int, seed: int) -> LabelledData:
    """The same n sentences for every system: hxtool.workflows.fewshot's own sampler."""
    return pool.subset(sample_indices(len(pool), n, seed))


def tune_config(profile: Profile, n: int, seed: int, lr: float) -> TrainConfig:
    return TrainConfig(steps=fewshot_steps(n, profile.batch_size, profile.epochs), batch_size=profile.batch_size,
                       lr=lr, head_lr=profile.head_lr, decay=False, warmup=0.0, max_length=profile.max_length,
                       seed=seed)


class Recorder:
    def __init__(self, run: Run, out: Path) -> None:
        self.run, self.out = run, out

    def stage(self, system: str, stage: str, steps: int, seconds: float, trainable: int,
              first_loss: float | None = None, last_loss: float | None = None, **extra: Any) -> None:
        row = {"system": system, "stage": stage, "steps": steps, "seconds": round(seconds, 2),
               "seconds_per_step": round(seconds / max(steps, 1), 3), "trainable": trainable,
               "first_loss": first_loss, "last_loss": last_loss, **extra}
        self.run.stages.append(row)
        print(f"  [{system}] {stage}: {steps} steps in {seconds:.0f} s ({row['seconds_per_step']} s/step), "
              f"trainable {trainable:,}" + (f", loss {first_loss:.2f} -> {last_loss:.2f}" if last_loss else ""),
              flush=True)
        self.save()

    def score(self, system: str, target: str, n: int, seed: int, gold: list[list[str]],
              predicted: list[list[str]], **extra: Any) -> dict[str, Any]:
        score = upos_accuracy(gold, predicted)
        self.run.scores.append({"system": system, "target": target, "n": n, "seed": seed,
                                "upos": round(100 * score.value, 2), "correct": score.correct,
                                "total": score.total, **extra})
        print(f"  [{system}] {target} n={n} seed={seed}: UPOS {100 * score.value:.2f}", flush=True)
        self.save()
        return self.run.scores[-1]

    def copy(self, system: str, row: dict[str, Any]) -> None:
        """Record an identical run measured under another system's name (e.g. `auto` at n = 5 is lang+head)."""
        self.run.scores.append({**row, "system": system, "same_run_as": row["system"]})
        self.save()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self.run), indent=1))
        os.replace(tmp, self.out)


# --- the three systems -----------------------------------------------------------------------------
def hxtool_recipe(profile: Profile, data_dir: Path) -> Recipe:
    """pretrain-mlm on the sources' POS and raw text: S + A x len(sources) steps (see the docstring)."""
    steps = profile.source_steps + profile.lang_steps * len(profile.sources)
    recipe = Recipe(
        base_model=profile.base_model, model=HyperConfig(**SIZES["base"]),
        train=TrainConfig(steps=steps, batch_size=profile.batch_size, lr=profile.pretrain_lr,
                          embedding_lr=profile.embedding_lr, head_lr=profile.head_lr,
                          warmup=0.1, max_length=profile.max_length, seed=1),
        data=[LabelledSource("pos", lang, data_dir / SOURCES[lang]) for lang in profile.sources],
        mlm=[MlmSource(lang, data_dir / "raw" / f"{lang}.txt") for lang in profile.sources])
    if profile.balanced:
        recipe = scale_labelled(recipe, profile.source_steps / steps)
    return with_mlm_languages(recipe, extra_mlm_sources(profile, data_dir))  # POS keeps its share


def extra_mlm_sources(profile: Profile, data_dir: Path) -> list[MlmSource]:
    """The MLM-only languages of --mlm-recipe (the targets left out: add-language brings those; the sources'
    own corpora stay the suite's)."""
    if not profile.mlm_recipe:
        return []
    return recipe_mlm_sources(profile.mlm_recipe, data_dir, leave_out={*profile.sources, *profile.targets})


def hxtool_system(tune: str) -> str:
    """The suite's name for hxtool with a few-shot tuning mode (or variant): `hxtool` for the default mode."""
    from hxtool.workflows.fewshot import DEFAULT_TUNE

    return "hxtool" if tune == DEFAULT_TUNE else "hxtool_" + tune.replace("+", "_")


@dataclass
class Variant:
    """One few-shot recipe of hxtool: a --tune mode plus its LoRA options, epochs and head rate."""

    tune: str
    lora: Any
    epochs: int
    head_lr: float
    self_train: int | None = None  # raw sentences for the second round; None: fewshot's default for the mode
    second_round: tuple = ()  # (SelfTraining field, value) pairs that replace the defaults of that round
    keep_updates: bool = False  # few-shot tunes on from add-language --adapt-encoder's updates (default: anew)


def parse_variant(spec: str, profile: Profile) -> Variant:
    """`MODE` or `MODE/key=value/...` with keys r (LoRA rank), t (LoRA targets, ':'-separated), l (LoRA
    layers: all, lower-half, 0-5 or 0:2:4), lr (LoRA rate), tlr (LoRA rate of the first round when
    self-training follows), xt (more first rounds' LoRA rates, ':'-separated, whose predictions join the first's to
    label the raw text; none: the first round alone), ep (few-shot epochs), hlr (head rate), st (raw
    sentences to self-train on, 0: off; default: fewshot's own, i.e. 1000 for `auto` from 20 shots), keep (the
    share of them kept), uw (the share of the kept words, least sure first, left out of the loss), ku=1 (tune on
    from add-language --adapt-encoder's encoder updates instead of starting anew); the profile
    gives every value not named. Experiments compare several recipes after one pretraining this way, e.g.
    `lang+head+lora/r=4/t=value:ffn_in:ffn_out`."""
    from hxtool.errors import HxError
    from hxtool.model.lora import check_targets
    from hxtool.workflows.fewshot import TUNE_MODES, LoraOptions
    from hxtool.workflows.self_training import SelfTraining

    tune, *pairs = spec.split("/")
    if tune not in TUNE_MODES:
        raise SystemExit(f"unknown tuning mode {tune!r} in {spec!r} (known: {', '.join(TUNE_MODES)})")
    if any("=" not in pair for pair in pairs):
        raise SystemExit(f"{spec!r}: options are key=value pairs after the mode, e.g. lang+head+lora/r=4")
    given = dict(pair.split("=", 1) for pair in pairs)
    unknown = set(given) - {"r", "t", "l", "lr", "tlr", "xt", "ep", "hlr", "st", "keep", "uw", "ku"}
    if unknown:
        raise SystemExit(f"unknown key(s) {', '.join(sorted(unknown))} in {spec!r} "
                         "(known: r, t, l, lr, tlr, xt, ep, hlr, st, keep, uw, ku)")
    if given.get("ku", "0") not in ("0", "1"):
        raise SystemExit(f"{spec!r}: ku is 1 (keep add-language's encoder updates) or 0")
    def number(key: str, default: Any, cast: type = float, text: str | None = None) -> Any:
        """given[key] (or `text`, one of its ':'-separated parts) as a number, `default` where the key is not
        given; a value that is no number stops with one line naming the key."""
        if text is None and key not in given:
            return default
        text = given[key] if text is None else text
        try:
            return cast(text)
        except ValueError:
            kind = "a whole number" if cast is int else "a number (e.g. 3e-4)"
            raise SystemExit(f"{spec!r}: {key} is {kind}, not {text!r}") from None

    try:
        lora = LoraOptions(rank=number("r", profile.lora_rank, int),
                           targets=tuple(given["t"].split(":")) if "t" in given else tuple(profile.lora_targets),
                           lr=number("lr", profile.lora_lr),
                           layers=given["l"].replace(":", ",") if "l" in given else profile.lora_layers,
                           teacher_lr=number("tlr", None),
                           extra_teacher_lrs=LoraOptions.extra_teacher_lrs if "xt" not in given else () if
                           given["xt"] == "none" else tuple(number("xt", None, float, r)
                                                            for r in given["xt"].split(":")))
        check_targets(lora.targets)
    except HxError as exc:
        raise SystemExit(f"{spec!r}: {exc}") from None
    if lora.rank < 1:
        raise SystemExit(f"{spec!r}: the rank must be at least 1")
    self_train = number("st", None, int)
    if self_train is not None and self_train < 0:
        raise SystemExit(f"{spec!r}: st is a number of raw sentences (0: no self-training)")
    second_round = tuple((field, number(key, None)) for key, field in (("keep", "keep"), ("uw", "unsure_words"))
                         if key in given)
    try:
        SelfTraining(**dict(second_round)).validate()
    except HxError as exc:
        raise SystemExit(f"{spec!r}: {exc}") from None
    return Variant(tune, lora, number("ep", profile.epochs, int), number("hlr", profile.head_lr),
                   self_train, second_round, given.get("ku") == "1")


def mean_row_predictions(model, target: str, sources: tuple[str, ...], words: list[list[str]],
                         task: str = "pos") -> list[list[str]]:
    """Zero-shot with the untrained mean of the `sources`' rows in the target's place (the suite passes the
    pretraining's languages, whose mean is where add-language starts every new language: the learned row
    must beat it). One source: that language's row. Whatever else add-language learned for the target (its
    own encoder updates, with --adapt-encoder) is left out too: this is the language before add-language."""
    from hxtool.tagging import predict_tags

    table = model.hypernet.embeddings.language.weight
    index = model.registry.lang_index(target)
    learned = table[index].detach().clone()
    updates = model.lora.pop(target) if target in model.lora else None
    with torch.no_grad():
        table[index] = table[[model.registry.lang_index(s) for s in sources]].mean(0)
    try:
        return predict_tags(model, task, target, words)
    finally:
        with torch.no_grad():
            table[index] = learned
        if updates is not None:
            model.lora[target] = updates


def pretrain_or_reuse(recipe: Recipe, checkpoint: Path, cache: Path | None, rec: Recorder, device: str) -> None:
    """hxtool's pretraining into `checkpoint`, or a copy of the one a run with the same recipe kept in `cache`
    (--pretrained-cache: the CPU suite's pretraining takes ~15 minutes and gives the same weights every time
    at a fixed thread count, so experiments on few-shot or add-language need not repeat it)."""
    from hxtool.workflows.pretrain import pretrain

    signature = json.loads(json.dumps(dataclasses.asdict(recipe), default=str))
    record = cache / "suite-pretraining.json" if cache is not None else None
    if record is not None and record.is_file():
        kept = json.loads(record.read_text())
        if kept["recipe"] != signature:
            raise SystemExit(f"--pretrained-cache {cache} holds a pretraining of another recipe "
                             "(other steps, rates, data or base model): name another folder, or delete this one")
        shutil.copytree(cache / "checkpoint", checkpoint)
        rec.stage(**kept["stage"], reused_from=str(cache))
        return
    clock = time.perf_counter()
    report = pretrain(recipe, checkpoint, device, quiet=True)
    stage = {"system": "hxtool", "stage": "pretrain-mlm", "steps": report.result.steps,
             "seconds": time.perf_counter() - clock, "trainable": report.trainable,
             "first_loss": report.result.first_loss, "last_loss": report.result.final_loss,
             "loss_per_pair": {f"{t}/{lang}": round(v, 3) for (t, lang), v in report.result.loss_per_pair.items()},
             "steps_per_pair": {f"{t}/{lang}": v for (t, lang), v in report.result.steps_per_pair.items()},
             "torch_threads": torch.get_num_threads()}
    rec.stage(**stage)
    if record is not None:
        shutil.rmtree(cache / "checkpoint", ignore_errors=True)  # a copy cut short by an earlier run
        shutil.copytree(checkpoint, cache / "checkpoint")
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"recipe": signature, "stage": stage}, indent=1))
        os.replace(tmp, record)  # written last: a cache without it is never read


def run_hxtool(profile: Profile, data_dir: Path, rec: Recorder, work: Path, device: str = "cpu",
               cache: Path | None = None) -> None:
    from hxtool.workflows.add_language import ADD_LANGUAGE_LR, EncoderAdaptation, add_language
    from hxtool.workflows.fewshot import FEWSHOT_LR, fewshot, resolve_self_training, resolve_tune
    from hxtool.workflows.self_training import requested
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    checkpoint = work / "hxtool"
    pretrain_or_reuse(hxtool_recipe(profile, data_dir), checkpoint, cache, rec, device)
    model, meta = load_model(checkpoint, device)
    for target in profile.targets:
        test = eval_data(data_dir, target, profile.eval_limit)
        pool = shot_pool(data_dir, target, profile)
        config = TrainConfig(steps=profile.lang_steps, batch_size=profile.batch_size, lr=ADD_LANGUAGE_LR,
                             max_length=profile.max_length, decay=False, warmup=0.0, seed=1)
        clock = time.perf_counter()
        adapt = EncoderAdaptation(steps=profile.adapt_steps or profile.lang_steps, anchor=profile.anchor) \
            if profile.adapt_encoder else None
        added = add_language(model, meta, target, data_dir / "raw" / f"{target}.txt", checkpoint, config, quiet=True,
                             adapt=adapt)
        steps = added.result.steps + (added.adapted.steps if added.adapted else 0)
        rec.stage("hxtool", f"add-language {target}", steps, time.perf_counter() - clock, 64,
                  added.result.first_loss, added.result.final_loss, head_looks_untrained=added.head_looks_untrained)
        if added.adapted is not None:  # its steps and seconds are inside add-language's above
            rec.stage("hxtool", f"adapt-encoder {target}", added.adapted.steps, added.adapted.seconds,
                      sum(p.numel() for p in model.lora[target].parameters()), added.adapted.first_loss,
                      added.adapted.final_loss)
        rec.run.cost.setdefault("hxtool", {})["bytes_zero_shot"] = disk_bytes(model.language_state(target))
        rec.score("hxtool", target, 0, 0, test.tags, predict_tags(model, "pos", target, test.words))
        rec.score("hxtool_meanrow", target, 0, 0, test.tags,
                  mean_row_predictions(model, target, tuple(model.registry.pretrained_languages()), test.words))
        snapshot = model.snapshot()  # a copy: restored before every few-shot run
        measured: dict[tuple, dict[str, Any]] = {}  # one run per distinct recipe (auto repeats the others)
        for tune in profile.tune_modes:
            system, variant = hxtool_system(tune), parse_variant(tune, profile)
            if system != "hxtool":  # the same zero-shot model, scored again so each system has its n=0
                model.restore(snapshot)
                rec.score(system, target, 0, 0, test.tags, predict_tags(model, "pos", target, test.words))
            for seed in profile.seeds:
                for n in (n for n in profile.shots if n > 0):
                    resolved = resolve_tune(variant.tune, n)
                    self_training = requested(variant.self_train, None)
                    plan = resolve_self_training(self_training, variant.tune, n)
                    if variant.second_round:
                        plan = self_training = dataclasses.replace(plan, **dict(variant.second_round))
                    second = plan.sentences
                    key = (resolved, dataclasses.astuple(variant.lora) if resolved.endswith("lora") else None,
                           variant.epochs, variant.head_lr, second, variant.second_round if second else (), n, seed,
                           variant.keep_updates and profile.adapt_encoder)
                    if key in measured:  # the same recipe, sentences and seed: the same run, not run twice
                        rec.copy(system, measured[key])
                        continue
                    model.restore(snapshot)
                    config = tune_config(dataclasses.replace(profile, epochs=variant.epochs, head_lr=variant.head_lr),
                                         n, seed, FEWSHOT_LR)
                    clock = time.perf_counter()
                    tuned = fewshot(model, meta, checkpoint, "pos", target, pool, None, n, config, tune=variant.tune,
                                    quiet=True, output=work / "fewshot-out", lora=variant.lora,
                                    self_training=self_training, keep_encoder_updates=variant.keep_updates)
                    seconds = time.perf_counter() - clock
                    second_round = tuned.self_training
                    extra = {"self_training": second_round} if second_round else {}
                    owned = model.language_state(target)  # what the language alone stores
                    trainable = sum(v.numel() for v in owned.values()) if variant.tune != "all" else \
                        sum(v.numel() for v in model.learned_state_dict().values())
                    rec.stage(system, f"fewshot {target} n={n} seed={seed}",
                              config.steps + (second_round["steps"] if second_round else 0), seconds, trainable,
                              **extra)
                    rec.run.cost.setdefault(system, {})["bytes_tuned"] = disk_bytes(owned)
                    rec.run.cost[system].setdefault("bytes_zero_shot", rec.run.cost["hxtool"]["bytes_zero_shot"])
                    measured[key] = rec.score(system, target, n, seed, test.tags,
                                              predict_tags(model, "pos", target, test.words), tune=resolved)
        model.restore(snapshot)
    del model
    gc.collect()


def baseline_setup(profile: Profile, data_dir: Path, device: str):
    """What both baselines start from: the base encoder, the sources' POS data and its labels; seeded so
    that the model built next starts from the same random head."""
    from hxtool.data.labelled import label_list
    from hxtool.model.backbone import load_backbone

    backbone = load_backbone(profile.base_model, device)
    sources = {lang: read_labelled("pos", data_dir / SOURCES[lang]) for lang in profile.sources}
    labels = label_list("pos", list(sources.values()))
    torch.manual_seed(1)
    return backbone, sources, labels


def run_madx(profile: Profile, data_dir: Path, rec: Recorder, device: str = "cpu") -> None:
    from hxtool.baselines import madx

    backbone, sources, labels = baseline_setup(profile, data_dir, device)
    model = madx.MadX(backbone, labels).to(device)
    mlm_config = TrainConfig(steps=profile.lang_steps, batch_size=profile.batch_size, lr=profile.adapter_lr,
                             head_lr=profile.head_lr, warmup=0.1, max_length=profile.max_length, seed=1)
    corpora = {lang: data_dir / "raw" / f"{lang}.txt" for lang in profile.sources}
    result = madx.train_language_adapters(model, corpora, mlm_config, train_mlm_head=True)
    la_params = sum(p.numel() for p in model.lang_adapters[profile.sources[0]].parameters())
    rec.stage("madx", "source language adapters + MLM head", result.steps, result.seconds,
              la_params * len(corpora) + sum(p.numel() for p in model.mlm_head.parameters()),
              result.mean_loss(True), result.mean_loss(False))
    task_config = TrainConfig(steps=profile.source_steps, batch_size=profile.batch_size, lr=profile.adapter_lr,
                              head_lr=profile.head_lr, warmup=0.1, max_length=profile.max_length, seed=1)
    result = madx.train_task_adapter(model, sources, task_config)
    task_params = sum(p.numel() for p in [*model.task_adapter.parameters(), *model.head.parameters()])
    rec.stage("madx", "task adapter + head", result.steps, result.seconds, task_params,
              result.mean_loss(True), result.mean_loss(False))
    snapshot = model.task_state()
    for target in profile.targets:
        test = eval_data(data_dir, target, profile.eval_limit)
        pool = shot_pool(data_dir, target, profile)
        config = dataclasses.replace(mlm_config, warmup=0.0, decay=False)  # as add-language: constant rate
        result = madx.train_language_adapters(model, {target: data_dir / "raw" / f"{target}.txt"}, config,
                                              train_mlm_head=False)
        rec.stage("madx", f"language adapter {target}", result.steps, result.seconds, la_params,
                  result.mean_loss(True), result.mean_loss(False))
        rec.run.cost.setdefault("madx", {})["bytes_zero_shot"] = disk_bytes(
            madx.added_per_language(model, target, tuned=False))
        rec.score("madx", target, 0, 0, test.tags, model.predict(test.words, target))
        # Diagnostic: the same task adapter over the first source language's adapter, i.e. without the
        # swap. If this beats the row above, the target adapter hurts at this budget.
        rec.score("madx_no_swap", target, 0, 0, test.tags, model.predict(test.words, profile.sources[0]))
        for seed in profile.seeds:
            for n in (n for n in profile.shots if n > 0):
                model.load_task_state(snapshot)
                config = tune_config(profile, n, seed, profile.adapter_lr)
                result = madx.tune_on_shots(model, target, shots_for(pool, n, seed), config)
                rec.stage("madx", f"fewshot {target} n={n} seed={seed}", result.steps, result.seconds, task_params,
                          result.mean_loss(True, 1), result.mean_loss(False, 1))
                rec.run.cost["madx"]["bytes_tuned"] = disk_bytes(madx.added_per_language(model, target, tuned=True))
                rec.score("madx", target, n, seed, test.tags, model.predict(test.words, target))
        model.load_task_state(snapshot)
    del model, backbone
    gc.collect()


def run_full_ft(profile: Profile, data_dir: Path, rec: Recorder, device: str = "cpu") -> None:
    from hxtool.baselines import full_finetune as ft

    backbone, sources, labels = baseline_setup(profile, data_dir, device)
    model = ft.FullFinetuneTagger(backbone, labels).to(device)
    config = TrainConfig(steps=profile.source_steps, batch_size=profile.batch_size, lr=profile.encoder_lr,
                         head_lr=profile.head_lr, warmup=0.1, max_length=profile.max_length, seed=1)
    result = ft.train_on_source(model, sources, config)
    trainable = sum(p.numel() for p in model.parameters())
    rec.stage("full_ft", "encoder + head on source POS", result.steps, result.seconds, trainable,
              result.mean_loss(True), result.mean_loss(False))
    snapshot = model.snapshot()
    rec.run.cost["full_ft"] = {"bytes_zero_shot": 0}  # zero-shot uses the source model as it is
    for target in profile.targets:
        test = eval_data(data_dir, target, profile.eval_limit)
        pool = shot_pool(data_dir, target, profile)
        rec.score("full_ft", target, 0, 0, test.tags, model.predict(test.words))
        for seed in profile.seeds:
            for n in (n for n in profile.shots if n > 0):
                model.restore(snapshot)
                tune = tune_config(profile, n, seed, profile.encoder_lr)
                result = ft.tune_on_shots(model, target, shots_for(pool, n, seed), tune)
                rec.stage("full_ft", f"fewshot {target} n={n} seed={seed}", result.steps, result.seconds, trainable,
                          result.mean_loss(True, 1), result.mean_loss(False, 1))
                if "bytes_tuned" not in rec.run.cost["full_ft"]:
                    rec.run.cost["full_ft"]["bytes_tuned"] = disk_bytes(ft.added_per_language(model))
                rec.score("full_ft", target, n, seed, test.tags, model.predict(test.words))
        model.restore(snapshot)
    del model, backbone, snapshot
    gc.collect()


# --- report -----------------------------------------------------------------------------------------
def summarise(run: Run) -> dict[str, dict[str, dict[int, tuple[float, float, int]]]]:
    """system -> target -> n -> (mean, sample std, count). n = 0 is one run: it does not use the seed."""
    grouped: dict[str, dict[str, dict[int, list[float]]]] = {}
    for row in run.scores:
        grouped.setdefault(row["system"], {}).setdefault(row["target"], {}).setdefault(row["n"], []).append(row["upos"])
    return {s: {t: {n: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else math.nan, len(v))
                    for n, v in sorted(by_n.items())} for t, by_n in by_t.items()} for s, by_t in grouped.items()}


def ordered_systems(names) -> list[str]:
    """hxtool, its other tuning modes, the baselines, then the diagnostic rows."""
    names = set(names)
    modes = sorted(n for n in names if n.startswith("hxtool_") and n not in DIAGNOSTICS)
    return [s for s in ("hxtool", *modes, *SYSTEMS[1:], *DIAGNOSTICS) if s in names]


def table(run: Run) -> str:
    summary = summarise(run)
    shots = sorted({row["n"] for row in run.scores})
    lines = [("| target | system | " + " | ".join(f"n={n}" for n in shots) + " |"),
             ("|---|---|" + "---:|" * len(shots))]
    for target in dict.fromkeys(row["target"] for row in run.scores):
        for system in ordered_systems(summary):
            cells = []
            for n in shots:
                mean, std, count = summary[system].get(target, {}).get(n, (math.nan, math.nan, 0))
                cells.append("–" if not count else f"{mean:.2f}" if count == 1 else f"{mean:.2f} ± {std:.2f}")
            lines.append(f"| {target} | {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(run: Run) -> str:
    lines = [("| system | trainable (source stage) | trainable (few-shot) | s/step source | s/step new language "
              "| s/step few-shot | added per language, n=0 | added per language, tuned |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for system in ordered_systems({s["system"] for s in run.stages}):
        stages = [s for s in run.stages if s["system"] == system]
        if not stages:
            continue
        few = [s for s in stages if s["stage"].startswith("fewshot")]
        lang = [s for s in stages if s["stage"].startswith(("add-language", "language adapter "))]
        source = [s for s in stages if s not in few and s not in lang]
        per_step = lambda rows: sum(r["seconds"] for r in rows) / max(sum(r["steps"] for r in rows), 1)
        cost = run.cost.get(system, {})
        size = lambda b: "–" if b is None else f"{b / 1e6:.2f} MB" if b >= 1e5 else f"{b / 1e3:.1f} kB"
        lang_cell = f"{per_step(lang):.2f}" if lang else "–"  # full fine-tuning has no new-language stage
        # A stage named twice (one pretraining in each of two merged files) is one stage's parameters.
        source_trainable = sum({s["stage"]: s["trainable"] for s in source}.values())
        lines.append(f"| {system} | {source_trainable:,} | {max((s['trainable'] for s in few), default=0):,} "
                     f"| {per_step(source):.2f} | {lang_cell} | {per_step(few):.2f} "
                     f"| {size(cost.get('bytes_zero_shot'))} | {size(cost.get('bytes_tuned'))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one target, n in {0, 20}, one seed, few steps")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    parser.add_argument("--targets", help="override the profile's targets (comma-separated: mt, ug, fo; or, with "
                                           "--shots 0, the zero-shot development languages kk, ta, zh, ar)")
    parser.add_argument("--shots", help="override the profile's n values (comma-separated)")
    parser.add_argument("--seeds", help="override the profile's seeds (comma-separated)")
    parser.add_argument("--source-steps", type=int, help="override S")
    parser.add_argument("--lang-steps", type=int, help="override A")
    parser.add_argument("--epochs", type=int, help="override few-shot epochs")
    parser.add_argument("--eval-limit", type=int, help="score only the first k test sentences (0: all)")
    parser.add_argument("--balanced", action="store_true", default=None,
                        help="hxtool's pretraining draws S POS and 2A MLM batches in expectation (as MAD-X)")
    parser.add_argument("--tune-modes", help="hxtool few-shot tuning modes, each its own system (comma-separated; "
                        "default auto,lang+head); a mode may carry its own options (r, t, l, lr, tlr, xt, ep, hlr, st, keep, "
                        "uw: see parse_variant), e.g. lang+head+lora/r=4/t=value:ffn_in:ffn_out/l=0-5/lr=2e-3/ep=40 "
                        "or auto/keep=1/uw=0.2")
    parser.add_argument("--mlm-recipe", help="a recipe (e.g. recipes/many-languages.toml) whose MLM languages join "
                        "hxtool's pretraining (same steps and POS share; the baselines are unchanged)")
    parser.add_argument("--adapt-encoder", action="store_true", default=None,
                        help="hxtool's add-language also trains the target's own encoder updates (anchored MLM, A steps)")
    parser.add_argument("--anchor", type=float, help="the weight of that stage's anchor (add-language --anchor; 1)")
    parser.add_argument("--adapt-steps", type=int, help="that stage's steps (default: A, the row's)")
    parser.add_argument("--pretrain-lr", type=float, help="hxtool's pretraining rate (default 1e-4)")
    parser.add_argument("--embedding-lr", type=float,
                        help="hxtool's pretraining rate for the task/language/layer embeddings (default: --pretrain-lr)")
    parser.add_argument("--lora-rank", type=int, help="rank of the lang+head+lora updates")
    parser.add_argument("--lora-targets", help="their encoder linears (comma-separated, e.g. query,value; default "
                        "ffn_in,ffn_out)")
    parser.add_argument("--lora-layers", help="which encoder layers get them (lower-half, the default; all; 0-5)")
    parser.add_argument("--lora-lr", type=float, help="their learning rate")
    parser.add_argument("--base-model", help="override the base encoder (e.g. tiny-random:xlm-roberta for a smoke run)")
    parser.add_argument("--output", type=Path, help="JSON file (default benchmarks/results/fewshot_curves[_quick].json)")
    parser.add_argument("--pretrained-cache", type=Path, metavar="DIR",
                        help="keep hxtool's pretrained checkpoint in DIR and reuse it when a later run has the same "
                             "recipe (the result file names DIR in the stage it reused)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where every system trains and tags")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="run nothing: merge these result files (e.g. one per --systems run) and print the "
                             "tables; JSON:system,... takes only those systems of a file (system>name renames one), "
                             "JSON@target,... only those targets, JSON#n,... only those shots "
                             "(e.g. a.json:hxtool,hxtool_meanrow@mt#0,5); files of other targets, shots or seeds "
                             "merge, a cell scored in two files is refused")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report, args.output)

    profile = PROFILES["quick" if args.quick else "full"]
    ints = lambda text: tuple(int(x) for x in text.split(","))
    overrides = {"targets": tuple(args.targets.split(",")) if args.targets else None,
                 "shots": ints(args.shots) if args.shots else None, "seeds": ints(args.seeds) if args.seeds else None,
                 "source_steps": args.source_steps, "lang_steps": args.lang_steps, "epochs": args.epochs,
                 "eval_limit": args.eval_limit, "base_model": args.base_model,
                 "tune_modes": tuple(args.tune_modes.split(",")) if args.tune_modes else None,
                 "lora_rank": args.lora_rank, "lora_lr": args.lora_lr, "balanced": args.balanced,
                 "pretrain_lr": args.pretrain_lr, "embedding_lr": args.embedding_lr, "mlm_recipe": args.mlm_recipe,
                 "adapt_encoder": args.adapt_encoder, "anchor": args.anchor,
                 "adapt_steps": args.adapt_steps,
                 "lora_targets": tuple(args.lora_targets.split(",")) if args.lora_targets else None,
                 "lora_layers": args.lora_layers}
    profile = dataclasses.replace(profile, **{k: v for k, v in overrides.items() if v is not None})
    systems = [s for s in args.systems.split(",") if s]
    for spec in profile.tune_modes:
        parse_variant(spec, profile)  # a typo fails now, not after the pretraining
    unknown = set(systems) - set(SYSTEMS) or set(profile.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    zero_shot_only = sorted(t for t in profile.targets if TARGETS[t][1] is None)
    if zero_shot_only and any(n > 0 for n in profile.shots):
        parser.error(f"{', '.join(zero_shot_only)}: zero-shot development languages (no few-shot pool): "
                     "run them with --shots 0")
    custom = any(v is not None for v in overrides.values())  # never overwrite a profile's recorded results
    name = f"fewshot_curves{'_quick' if args.quick else ''}{'_custom' if custom else ''}.json"
    out = args.output or REPO / "benchmarks" / "results" / name
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "hardware": hardware(),
            "systems": systems, "data_dir": str(args.data_dir), "device": args.device}
    run = Run(profile=dataclasses.asdict(profile), meta=meta)
    rec = Recorder(run, out)
    print(f"fewshot curves ({'quick' if args.quick else 'full'}): {profile}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fewshot-curves-") as tmp:
        for system in systems:
            clock = time.perf_counter()
            print(f"== {system}", flush=True)
            if system == "hxtool":
                run_hxtool(profile, args.data_dir, rec, Path(tmp), args.device, args.pretrained_cache)
            elif system == "madx":
                run_madx(profile, args.data_dir, rec, args.device)
            else:
                run_full_ft(profile, args.data_dir, rec, args.device)
            run.meta.setdefault("seconds", {})[system] = round(time.perf_counter() - clock, 1)
            rec.save()
    run.meta["seconds"]["total"] = round(time.perf_counter() - start, 1)
    rec.save()
    print_tables(run)
    print(f"results: {out}")
    plot(out)
    return 0


def print_tables(run: Run) -> None:
    profile = run.profile
    print(f"\nUPOS accuracy (%) on the first {profile['eval_limit'] or 'all'} test sentences, mean ± sample std over "
          f"seeds {list(profile['seeds'])} (n=0 does not depend on the seed: one run)")
    print(table(run))
    print("\nCost")
    print(cost_table(run))
    print(f"\ntime per system (s): {run.meta.get('seconds')}")


def plot(path: Path) -> None:
    try:
        from benchmarks.plot import plot_curves
    except ImportError:  # run from outside the repository (plot_curves itself handles a missing matplotlib)
        return
    plot_curves(path)


def read_run(spec: Path | str) -> dict[str, Any]:
    """A result file, `FILE:system,...` for only those systems' scores, stages and costs (`system>name` also renames
    it, e.g. a variant run once its recipe became the default), `FILE@target,...` for only those targets' scores and
    stages, and/or `FILE#n,...` for only those numbers of shots' scores (e.g. `FILE:hxtool,hxtool_meanrow@mt#0,5`)."""
    spec = str(spec)
    spec, _, shots = spec.rpartition("#") if "#" in Path(spec).name else (spec, "", "")
    spec, at, targets = spec.rpartition("@") if "@" in Path(spec).name else (spec, "", "")
    path, _, wanted = spec.partition(":")
    run = json.loads(Path(path).read_text())
    if wanted:
        names = {}  # system -> its name in the merged file
        for part in wanted.split(","):
            system, _, new_name = part.partition(">")
            names[system] = new_name or system
        missing = set(names) - {row["system"] for row in run["scores"]}
        if missing:
            raise SystemExit(f"{path} has no scores of {', '.join(sorted(missing))}")
        run["scores"] = [row for row in run["scores"] if row["system"] in names]
        for row in run["scores"]:  # a copy of a run whose system is left out stands for that run itself
            if row.get("same_run_as") not in names:
                row.pop("same_run_as", None)
        run["stages"] = [row for row in run["stages"] if row["system"] in names]
        run["cost"] = {names[k]: v for k, v in run["cost"].items() if k in names}
        for row in run["scores"] + run["stages"]:
            row["system"] = names[row["system"]]
            if "same_run_as" in row:
                row["same_run_as"] = names[row["same_run_as"]]
        renamed = {old: new for old, new in names.items() if old != new}
        if renamed:
            run["meta"]["renamed"] = renamed
        run["meta"]["seconds"] = {}  # a file's wall time is not any one of its systems'
    if at:
        chosen = targets.split(",")
        missing = set(chosen) - set(run["profile"]["targets"])
        if missing:
            raise SystemExit(f"{path} has no target {', '.join(sorted(missing))}")
        left_out = set(run["profile"]["targets"]) - set(chosen)
        run["profile"]["targets"] = [t for t in run["profile"]["targets"] if t in chosen]
        run["scores"] = [row for row in run["scores"] if row["target"] in chosen]
        # Stages name their target as their second word ("add-language ug", "fewshot ug n=20 seed=1").
        run["stages"] = [row for row in run["stages"] if not set(row["stage"].split()[1:2]) & left_out]
        run["meta"]["seconds"] = {}
    if shots:
        chosen_n = {int(n) for n in shots.split(",")}
        missing_n = chosen_n - set(run["profile"]["shots"]) - {0}
        if missing_n:
            raise SystemExit(f"{path} has no runs at n = {', '.join(map(str, sorted(missing_n)))}")
        run["profile"]["shots"] = [n for n in run["profile"]["shots"] if n in chosen_n]
        run["scores"] = [row for row in run["scores"] if row["n"] in chosen_n]
        # Few-shot stages name their n ("fewshot ug n=20 seed=1"); the others (pretraining, add-language) stay.
        run["stages"] = [row for row in run["stages"]
                         if not any(w.startswith("n=") and int(w[2:]) not in chosen_n for w in row["stage"].split())]
        run["meta"]["seconds"] = {}
    return run


def report(paths: list[Path], output: Path | None) -> int:
    """Merge result files of runs with one profile (say one per system) into one, and print its tables.
    `FILE:system,...` takes only those systems of a file (e.g. extra tuning modes of an earlier run), `FILE@target,...`
    only those targets (e.g. a re-run of some targets replaces an older run's), `FILE#n,...` only those shots
    (see read_run)."""
    runs = [read_run(path) for path in paths]
    # The few-shot tuning options touch hxtool alone: a baseline's file may predate them or differ in them.
    # Targets are independent of each other (add-language starts each from the pretrained rows' mean), and so
    # are the runs at each n (each starts from the same snapshot), so files of different targets or shots
    # merge; so do runs of other seeds (a stopped run finished by one of its missing seeds); a (system, target,
    # n, seed) twice is refused below.
    shared = lambda profile: {k: v for k, v in profile.items()
                              if k not in (*HXTOOL_ONLY, "targets", "shots", "seeds")}
    profiles = {json.dumps(shared(r["profile"]), sort_keys=True) for r in runs}
    if len(profiles) > 1:
        raise SystemExit("these result files come from different profiles; merging them would mix setups")
    hxtool_runs = [r for r in runs if any(row["system"].startswith("hxtool") for row in r["scores"])]
    # Each tuning mode is its own system, so hxtool files may differ in which modes they ran; one system's
    # scores must all come from one set of options (pretraining, add-language, few-shot), or its cells would
    # mix setups. Systems measured with other options than the merged profile's are listed in the result.
    # (a file older than an option ran with that option's default then: BEFORE_OPTION, else today's)
    defaults = {f.name: f.default for f in dataclasses.fields(Profile)}
    options = lambda profile: {k: profile.get(k, BEFORE_OPTION.get(k, defaults[k])) for k in HXTOOL_ONLY
                               if k != "tune_modes"}
    by_system: dict[str, dict] = {}
    has_zero_shot: dict[str, bool] = {}  # whether a file with the system's n = 0 set its ZERO_SHOT_ONLY options
    has_updates: dict[str, bool] = {}  # whether a file whose cells tuned low-rank updates set its LORA_ONLY options
    for r in hxtool_runs:
        for system in {row["system"] for row in r["scores"] if row["system"].startswith("hxtool")}:
            rows = [row for row in r["scores"] if row["system"] == system]
            few_shot_only = all(row["n"] > 0 for row in rows)
            tunes_updates = any("lora" in row.get("tune", "") for row in rows)  # `auto` below 20: row + head only
            mine = options(r["profile"])
            if system not in by_system:
                by_system[system], has_zero_shot[system] = dict(mine), not few_shot_only
                has_updates[system] = tunes_updates
                continue
            loose = few_shot_only or not has_zero_shot[system]
            loose_updates = not tunes_updates or not has_updates[system]
            if any(by_system[system][k] != mine[k] for k in mine
                   if not (loose and k in ZERO_SHOT_ONLY) and not (loose_updates and k in LORA_ONLY)):
                raise SystemExit(f"these hxtool result files score {system} with different tuning options; "
                                 "merging them would mix setups")
            if not few_shot_only:
                by_system[system].update({k: mine[k] for k in ZERO_SHOT_ONLY})
                has_zero_shot[system] = True
            if tunes_updates:
                by_system[system].update({k: mine[k] for k in LORA_ONLY})
                has_updates[system] = True
    cells = [(row["system"], row["target"], row["n"], row["seed"]) for r in runs for row in r["scores"]]
    counts = Counter(cells)
    if len(counts) < len(cells):
        twice = sorted({cell[0] for cell, count in counts.items() if count > 1})
        raise SystemExit(f"more than one file scores {', '.join(twice)}: pick systems with FILE:system,...")
    first = (hxtool_runs or runs)[0]
    targets = list(dict.fromkeys(t for r in runs for t in r["profile"]["targets"]))
    shots = sorted({n for r in runs for n in r["profile"]["shots"]})
    seeds = sorted({seed for r in runs for seed in r["profile"]["seeds"]})
    merged = Run(profile={**first["profile"], "targets": targets, "shots": shots, "seeds": seeds},
                 meta={**first["meta"], "merged_from": [str(p) for p in paths], "seconds": {}})
    for r in runs:
        merged.scores += r["scores"]
        merged.stages += r["stages"]
        merged.cost.update(r["cost"])
        merged.meta["seconds"].update({k: v for k, v in r["meta"].get("seconds", {}).items() if k != "total"})
    merged.meta["seconds"]["total"] = round(sum(merged.meta["seconds"].values()), 1)
    merged.meta["renamed"] = {old: new for r in runs for old, new in r["meta"].get("renamed", {}).items()}
    profile_options = options(merged.profile)
    own = {system: {k: v for k, v in kept.items() if v != profile_options[k]} for system, kept in by_system.items()}
    merged.meta["options_by_system"] = {system: differ for system, differ in own.items() if differ}
    print_tables(merged)
    for system, differ in merged.meta["options_by_system"].items():
        print(f"{system} ran with its own options: " + ", ".join(f"{k}={v}" for k, v in differ.items()))
    if output:
        Recorder(merged, output).save()
        print(f"merged results: {output}")
        plot(output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
