"""Zero-shot to a task-language pair never trained: NER on Kazakh, which pretraining saw only as POS and MLM.

Hyper-X's other promise (issue 10, item 6): a hypernetwork that learned NER from English and Kazakh from
POS (31 UD KTB sentences) and raw text should tag Kazakh NER with the (ner, kk) pair it never trained on.
Both systems start from the same base encoder (multilingual-e5-small by default) and are scored with strict
IOB2 span F1 (seqeval's, via hxtool.evaluation.metrics.span_f1) on the first K sentences of
ner/kk/test.tsv (KazNERD mapped to PER/ORG/LOC), and on the first K of ner/en/test.tsv for reference.

  hxtool    pretrain-mlm (hxtool.workflows.pretrain) on POS en/tr/kk, NER en and MLM en/tr/kk, then
            predict_tags(model, "ner", "kk", ...). Diagnostics from the same model: `hxtool_en_row` (en's
            row in kk's place) and `hxtool_meanrow` (the mean of the en and tr rows in kk's place): if kk's
            learned row beats them, POS + MLM on kk carried something to NER.
  full_ft   every encoder weight plus a linear head (hxtool.baselines.full_finetune), en NER only, then
            the same kk test: plain cross-lingual transfer of the encoder.

Compute, matched as in fewshot_curves.py (S = --steps, A = --mlm-steps):
  hxtool    S + 3A steps, one (task, language) pair per step, temperature-sampled over the 7 pairs' sizes
            (POS en/tr/kk, NER en, MLM en/tr/kk); A pays for the MLM that full fine-tuning cannot use.
            ner/en gets about a sixth of the steps (the JSON records every pair's count, `steps_per_pair`).
  full_ft   S steps, every one on en NER. So the baseline gets S NER steps against hxtool's ~(S + 3A) / 6:
            the NER compute favours full fine-tuning; hxtool's other steps (POS, MLM) are what is meant to
            carry NER to kk.
Rates as in fewshot_curves.py: hxtool 1e-4 (heads 5e-3), full fine-tuning 5e-5 (head 5e-3); 10% warm-up
then linear decay; seed --seed for both.

Cost at the defaults (S = 1500, A = 100, batch 16, max length 128, K = 2000), measured on an H200 with
other jobs sharing the GPU (so upper bounds): hxtool 122-129 s, full_ft 99 s (51 s with --steps 335),
model loading and tagging included; about 2 hours on 2 CPU cores (estimated: 1-2.5 s a step at this
length).

Usage:
  python benchmarks/unseen_pair.py --device cuda                 # -> benchmarks/results/unseen_pair.json
  python benchmarks/unseen_pair.py --base-model tiny-random:xlm-roberta --steps 20 --mlm-steps 5 \\
      --eval-limit 50                                            # smoke run (-> unseen_pair_custom.json)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.fewshot_curves import hardware, mean_row_predictions  # noqa: E402
from hxtool.config import SIZES, HyperConfig, LabelledSource, MlmSource, Recipe, TrainConfig  # noqa: E402
from hxtool.data.labelled import LabelledData, read_labelled  # noqa: E402
from hxtool.errors import HxError  # noqa: E402
from hxtool.evaluation.metrics import span_f1  # noqa: E402

SYSTEMS = ("hxtool", "full_ft")
DIAGNOSTICS = ("hxtool_en_row", "hxtool_meanrow")
TARGET = "kk"
POS = {"en": "ud/en_ewt/train.conllu", "tr": "ud/tr_imst/train.conllu", "kk": "ud/kk_ktb/train.conllu"}
NER_TRAIN = {"en": "ner/en/train.tsv"}
TESTS = {"kk": "ner/kk/test.tsv", "en": "ner/en/test.tsv"}  # en: how well NER itself was learned
MLM_LANGS = ("en", "tr", "kk")


@dataclass
class Profile:
    steps: int = 1500  # S
    mlm_steps: int = 100  # A, per MLM language
    batch_size: int = 16
    max_length: int = 128
    eval_limit: int = 2000  # first K sentences of each test file; 0: all
    base_model: str = "pypi:multilingual-e5-small"
    seed: int = 1
    hxtool_lr: float = 1e-4
    encoder_lr: float = 5e-5
    head_lr: float = 5e-3


def needed_files(data_dir: Path, systems: list[str]) -> list[Path]:
    files = [data_dir / path for path in TESTS.values()] + [data_dir / path for path in NER_TRAIN.values()]
    if "hxtool" in systems:
        files += [data_dir / path for path in POS.values()] + [data_dir / "raw" / f"{lang}.txt" for lang in MLM_LANGS]
    return files


def test_data(data_dir: Path, limit: int) -> dict[str, LabelledData]:
    tests = {lang: read_labelled("ner", data_dir / path) for lang, path in TESTS.items()}
    return {lang: data.subset(list(range(min(limit, len(data))))) if limit else data for lang, data in tests.items()}


def train_config(profile: Profile, steps: int, lr: float) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=profile.batch_size, lr=lr, head_lr=profile.head_lr, warmup=0.1,
                       max_length=profile.max_length, seed=profile.seed)


class Recorder:
    """Scores and stages into one JSON file, rewritten after each so an interrupted run keeps its rows."""

    def __init__(self, run: dict[str, Any], out: Path) -> None:
        self.run, self.out = run, out

    def stage(self, system: str, stage: str, seconds: float, **extra: Any) -> None:
        self.run["stages"].append({"system": system, "stage": stage, "seconds": round(seconds, 2), **extra})
        print(f"  [{system}] {stage}: {seconds:.0f} s", flush=True)
        self.save()

    def score(self, system: str, lang: str, gold: list[list[str]], predicted: list[list[str]]) -> None:
        score = span_f1(gold, predicted).to_dict()
        self.run["scores"].setdefault(system, {})[lang] = score
        print(f"  [{system}] {lang} NER: span F1 {100 * score['value']:.2f} (P {100 * score['precision']:.2f}, "
              f"R {100 * score['recall']:.2f})", flush=True)
        self.save()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.run, indent=1))
        os.replace(tmp, self.out)


def hxtool_recipe(profile: Profile, data_dir: Path) -> Recipe:
    """POS en/tr/kk + NER en + MLM en/tr/kk; no (ner, kk) pair: S + 3A steps (see the docstring)."""
    labelled = [LabelledSource("pos", lang, data_dir / path) for lang, path in POS.items()]
    labelled += [LabelledSource("ner", lang, data_dir / path) for lang, path in NER_TRAIN.items()]
    return Recipe(base_model=profile.base_model, model=HyperConfig(**SIZES["base"]),
                  train=train_config(profile, profile.steps + profile.mlm_steps * len(MLM_LANGS), profile.hxtool_lr),
                  data=labelled, mlm=[MlmSource(lang, data_dir / "raw" / f"{lang}.txt") for lang in MLM_LANGS])


def run_hxtool(profile: Profile, data_dir: Path, tests: dict[str, LabelledData], rec: Recorder, work: Path,
               device: str) -> None:
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags
    from hxtool.workflows.pretrain import pretrain

    clock = time.perf_counter()
    report = pretrain(hxtool_recipe(profile, data_dir), work / "hxtool", device, quiet=True)
    result = report.result
    pairs = lambda d, digits=None: {f"{t}/{lang}": (round(v, digits) if digits else v) for (t, lang), v in d.items()}
    rec.stage("hxtool", "pretrain-mlm", time.perf_counter() - clock, steps=result.steps,
              trainable=report.trainable, first_loss=result.first_loss, last_loss=result.final_loss,
              steps_per_pair=pairs(result.steps_per_pair), loss_per_pair=pairs(result.loss_per_pair, 3),
              precision=result.precision)
    model, _ = load_model(work / "hxtool", device)
    kk = tests[TARGET]
    rows = {"hxtool": lambda: predict_tags(model, "ner", TARGET, kk.words),
            "hxtool_en_row": lambda: mean_row_predictions(model, TARGET, ("en",), kk.words, task="ner"),
            "hxtool_meanrow": lambda: mean_row_predictions(model, TARGET, ("en", "tr"), kk.words, task="ner")}
    for system, predict in rows.items():
        clock = time.perf_counter()
        rec.score(system, TARGET, kk.tags, predict())
        rec.stage(system, f"tag {TARGET} NER ({len(kk)} sentences)", time.perf_counter() - clock)
    rec.score("hxtool", "en", tests["en"].tags, predict_tags(model, "ner", "en", tests["en"].words))
    del model
    gc.collect()


def run_full_ft(profile: Profile, data_dir: Path, tests: dict[str, LabelledData], rec: Recorder, device: str) -> None:
    from hxtool.baselines import full_finetune as ft
    from hxtool.data.labelled import label_list
    from hxtool.model.backbone import load_backbone

    backbone = load_backbone(profile.base_model, device)
    sources = {lang: read_labelled("ner", data_dir / path) for lang, path in NER_TRAIN.items()}
    torch.manual_seed(profile.seed)  # the head's initial weights
    model = ft.FullFinetuneTagger(backbone, label_list("ner", list(sources.values()))).to(device)
    result = ft.train_on_source(model, sources, train_config(profile, profile.steps, profile.encoder_lr))
    rec.stage("full_ft", "encoder + head on en NER", result.seconds, steps=result.steps,
              trainable=sum(p.numel() for p in model.parameters()), first_loss=result.mean_loss(True),
              last_loss=result.mean_loss(False))
    for lang in (TARGET, "en"):
        clock = time.perf_counter()
        rec.score("full_ft", lang, tests[lang].tags, model.predict(tests[lang].words))
        if lang == TARGET:
            rec.stage("full_ft", f"tag {TARGET} NER ({len(tests[lang])} sentences)", time.perf_counter() - clock)
    del model, backbone
    gc.collect()


def table(run: dict[str, Any]) -> str:
    pct = lambda score, key: f"{100 * score[key]:.2f}" if score else "–"
    lines = ["| system | kk span F1 | kk P | kk R | en span F1 |", "|---|---:|---:|---:|---:|"]
    for system in (*SYSTEMS, *DIAGNOSTICS):
        scores = run["scores"].get(system)
        if scores:
            kk, en = scores.get(TARGET), scores.get("en")
            lines.append(f"| {system} | {pct(kk, 'value')} | {pct(kk, 'precision')} | {pct(kk, 'recall')} "
                         f"| {pct(en, 'value')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data",
                        help="a folder laid out like ../shared/data (default: ../shared/data beside the repository)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where both systems train and tag")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    parser.add_argument("--steps", type=int, help=f"S, source steps (default {Profile.steps})")
    parser.add_argument("--mlm-steps", type=int,
                        help=f"A, hxtool's extra steps per MLM language (default {Profile.mlm_steps})")
    parser.add_argument("--batch-size", type=int, help=f"default {Profile.batch_size}")
    parser.add_argument("--max-length", type=int, help=f"pieces per training chunk (default {Profile.max_length})")
    parser.add_argument("--eval-limit", type=int,
                        help=f"score the first K test sentences, 0: all (default {Profile.eval_limit})")
    parser.add_argument("--base-model",
                        help=f"base encoder (default {Profile.base_model}; tiny-random:xlm-roberta for a smoke run)")
    parser.add_argument("--seed", type=int, help=f"default {Profile.seed}")
    parser.add_argument("--output", type=Path, help="JSON file (default benchmarks/results/unseen_pair.json, or "
                        "unseen_pair_custom.json when any size or the system set differs from the defaults)")
    args = parser.parse_args(argv)
    overrides = {"steps": args.steps, "mlm_steps": args.mlm_steps, "batch_size": args.batch_size,
                 "max_length": args.max_length, "eval_limit": args.eval_limit, "base_model": args.base_model,
                 "seed": args.seed}
    profile = dataclasses.replace(Profile(), **{k: v for k, v in overrides.items() if v is not None})
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        parser.error(f"--systems: unknown {', '.join(sorted(unknown))}" if unknown else "--systems: none given")
    missing = [str(path) for path in needed_files(args.data_dir, systems) if not path.is_file()]
    if missing:
        raise SystemExit("unseen_pair: missing data (--data-dir expects ../shared/data's layout):\n  "
                         + "\n  ".join(missing))
    # Never overwrite the recorded default results with a smaller or partial run.
    custom = dataclasses.asdict(profile) != dataclasses.asdict(Profile()) or tuple(systems) != SYSTEMS
    out = args.output or REPO / "benchmarks" / "results" / f"unseen_pair{'_custom' if custom else ''}.json"
    run: dict[str, Any] = {
        "profile": dataclasses.asdict(profile),
        "meta": {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "hardware": hardware(),
                 "device": args.device, "data_dir": str(args.data_dir), "systems": systems, "target": TARGET,
                 "seconds": {}},
        "scores": {}, "stages": []}
    rec = Recorder(run, out)
    print(f"unseen pair (ner, {TARGET}): {profile}", flush=True)
    start = time.perf_counter()
    try:
        tests = test_data(args.data_dir, profile.eval_limit)
        with tempfile.TemporaryDirectory(prefix="unseen-pair-") as tmp:
            for system in systems:
                print(f"== {system}", flush=True)
                clock = time.perf_counter()
                if system == "hxtool":
                    run_hxtool(profile, args.data_dir, tests, rec, Path(tmp), args.device)
                else:
                    run_full_ft(profile, args.data_dir, tests, rec, args.device)
                run["meta"]["seconds"][system] = round(time.perf_counter() - clock, 1)
    except HxError as error:  # bad data or base model: one line, as the CLI does
        raise SystemExit(f"unseen_pair: {error}") from None
    run["meta"]["seconds"]["total"] = round(time.perf_counter() - start, 1)
    rec.save()
    print(f"\nNER span F1 (%), first {profile.eval_limit or 'all'} sentences of each test file; kk never had NER "
          "in training")
    print(table(run))
    ner_steps = {s["system"]: s["steps_per_pair"].get("ner/en", 0) if "steps_per_pair" in s else s["steps"]
                 for s in run["stages"] if "steps" in s}
    print(f"\nen NER training steps: {ner_steps}")
    print(f"time per system (s): {run['meta']['seconds']}\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
