"""How far can the language row alone take zero-shot tagging? The ceiling of every row-only add-language.

add-language learns one 64-number row from raw text; issue 10 asks that row to beat the untrained mean row
by >= 1.0 UPOS on average. This measures how much any row could give on a pretraining: the row trained on
the target's *labelled* sentences (the hypernetwork, the head and the encoder untouched; `fewshot --tune
lang` on every sentence of the pool), against the mean row and the row add-language learns from raw text.
`--fit test` trains the row on the test sentences themselves: an oracle, the most a row can do there.
`--known-rows` also tags each target with every pretrained language's row in its place and measures the MLM
loss of the target's raw text under each: which known row would serve it best, and would raw text find it?

Usage:
  python benchmarks/row_ceiling.py --checkpoint PRETRAINED --targets mt,ug,fo --output ceiling.json
  (PRETRAINED: a pretrain-mlm checkpoint, e.g. the suite's --pretrained-cache DIR/checkpoint; it is copied,
  never changed)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from fewshot_curves import TARGETS, eval_data, hardware, mean_row_predictions, target_pool  # noqa: E402

from hxtool.config import TrainConfig  # noqa: E402
from hxtool.data.labelled import LabelledData  # noqa: E402
from hxtool.evaluation.metrics import upos_accuracy  # noqa: E402
from hxtool.store.atomic import atomic_write_text  # noqa: E402

FITS = ("train", "test")


def fit_data(data_dir: Path, target: str, fit: str, test: LabelledData) -> LabelledData | None:
    """The labelled sentences the row is fitted on: the target's few-shot pool (its train file) or its test."""
    return test if fit == "test" else target_pool(data_dir, target)


def upos(gold: list[list[str]], predicted: list[list[str]]) -> float:
    return round(100 * upos_accuracy(gold, predicted).value, 2)


def spearman(x: list[float], y: list[float]) -> float | None:
    """Rank correlation (ties share their mean rank); None when either side is constant."""
    from scipy.stats import spearmanr  # scipy comes with seqeval's scikit-learn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant side warns and gives nan: reported as None
        r = float(spearmanr(x, y)[0])
    return None if math.isnan(r) else round(r, 3)


def known_rows(model, target: str, test: LabelledData, corpus: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Zero-shot UPOS with each pretrained language's row in the target's place, and the MLM loss of the target's
    raw text under that row (fixed batches, dropout off). A negative correlation means: the lower the loss, the
    better the tagging, so raw text could pick the row."""
    from add_language_probe import fixed_batches, mlm_loss

    batches = fixed_batches(model, corpus, args.known_row_batches, args.batch_size, args.max_length)
    scored = []
    for code in model.registry.pretrained_languages():
        tagged = upos(test.tags, mean_row_predictions(model, target, (code,), test.words))
        scored.append({"row": code, "upos": tagged,
                       "mlm_loss": round(mlm_loss(model, batches, model.registry.lang_index(code)), 4)})
    best = max(scored, key=lambda r: r["upos"])
    lowest = min(scored, key=lambda r: r["mlm_loss"])
    return {"target": target, "rows": scored, "best_row": best["row"], "best_upos": best["upos"],
            "lowest_loss_row": lowest["row"], "lowest_loss_upos": lowest["upos"],
            "spearman_loss_upos": spearman([r["mlm_loss"] for r in scored], [r["upos"] for r in scored])}


def save(args: argparse.Namespace, found: dict[str, list[dict[str, Any]]], seconds: float) -> None:
    """Written after every target and every fitted row, so a run cut short keeps what it measured."""
    result = {"meta": {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                       "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "hardware": hardware(), "device": args.device, "checkpoint": str(args.checkpoint),
                       "seconds": round(seconds, 1)},
              **found}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(result, indent=1))


def measure(args: argparse.Namespace, work: Path) -> dict[str, list[dict[str, Any]]]:
    """{"zero_shot": learned and mean row per target, "rows": one per fitted row, "known_rows": per target}."""
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags
    from hxtool.workflows.add_language import ADD_LANGUAGE_LR, add_language, initial_row
    from hxtool.workflows.fewshot import FEWSHOT_LR, fewshot, fewshot_steps

    checkpoint = work / "checkpoint"
    shutil.copytree(args.checkpoint, checkpoint)
    model, meta = load_model(checkpoint, args.device)
    sources = tuple(model.registry.pretrained_languages())
    found: dict[str, list[dict[str, Any]]] = {"zero_shot": [], "rows": [], "known_rows": []}
    rows = found["rows"]
    start = time.perf_counter()
    for target in args.targets:
        test = eval_data(args.data_dir, target, args.eval_limit)
        config = TrainConfig(steps=args.lang_steps, batch_size=args.batch_size, lr=ADD_LANGUAGE_LR,
                             max_length=args.max_length, decay=False, warmup=0.0, seed=1)
        add_language(model, meta, target, args.data_dir / "raw" / f"{target}.txt", checkpoint, config, quiet=True)
        learned = upos(test.tags, predict_tags(model, "pos", target, test.words))
        mean_row = upos(test.tags, mean_row_predictions(model, target, sources, test.words))
        print(f"{target}: learned row {learned:.2f}, mean row {mean_row:.2f}", flush=True)
        found["zero_shot"].append({"target": target, "upos_learned_row": learned, "upos_mean_row": mean_row,
                                   "learned_minus_mean": round(learned - mean_row, 2)})
        if args.known_rows:
            known = known_rows(model, target, test, args.data_dir / "raw" / f"{target}.txt", args)
            found["known_rows"].append(known)
            print(f"{target}: best known row {known['best_row']} {known['best_upos']:.2f}; lowest MLM loss "
                  f"{known['lowest_loss_row']} {known['lowest_loss_upos']:.2f}; Spearman(loss, UPOS) "
                  f"{known['spearman_loss_upos']}", flush=True)
        save(args, found, time.perf_counter() - start)
        table = model.hypernet.embeddings.language.weight
        index = model.registry.lang_index(target)
        mean = initial_row(model, "mean")  # where add-language starts: the pretrained rows' mean
        snapshot = model.snapshot()
        for fit in args.fits:
            data = fit_data(args.data_dir, target, fit, test)
            if data is None:
                print(f"{target}: no {fit} file, skipped", flush=True)
                continue
            model.restore(snapshot)
            with torch.no_grad():
                table[index] = mean  # the ceiling starts where add-language starts
            steps = fewshot_steps(len(data), args.batch_size, args.epochs)
            config = TrainConfig(steps=steps, batch_size=args.batch_size, lr=FEWSHOT_LR, decay=False, warmup=0.0,
                                 max_length=args.max_length, seed=1)
            clock = time.perf_counter()
            fewshot(model, meta, checkpoint, "pos", target, data, None, len(data), config, tune="lang", quiet=True,
                    output=work / "fit")
            ceiling = upos(test.tags, predict_tags(model, "pos", target, test.words))
            moved = float((table[index].detach() - mean).norm())
            print(f"{target}: row fitted on {len(data)} {fit} sentences, {args.epochs} epochs: {ceiling:.2f} "
                  f"({ceiling - mean_row:+.2f} over the mean row; moved {moved:.2f})", flush=True)
            rows.append({"target": target, "fit": fit, "sentences": len(data), "epochs": args.epochs,
                         "steps": steps, "upos_learned_row": learned, "upos_mean_row": mean_row,
                         "upos_fitted_row": ceiling, "fitted_minus_mean": round(ceiling - mean_row, 2),
                         "learned_minus_mean": round(learned - mean_row, 2), "row_moved_l2": round(moved, 3),
                         "mean_row_norm": round(float(mean.norm()), 3),
                         "seconds": round(time.perf_counter() - clock, 1)})
            save(args, found, time.perf_counter() - start)
        model.restore(snapshot)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a pretrain-mlm checkpoint (copied first)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--targets", default="mt,ug,fo", help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--fits", default="train", help="comma-separated: train (the target's labelled pool; the "
                        "development languages have none) and/or test (an oracle)")
    parser.add_argument("--epochs", type=int, default=3, help="passes of the row over the fitted sentences")
    parser.add_argument("--lang-steps", type=int, default=100, help="add-language's steps (the suite's A)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--eval-limit", type=int, default=0, help="score only the first k test sentences (0: all)")
    parser.add_argument("--known-rows", action="store_true", help="also tag each target with every pretrained "
                        "language's row in its place, and score its raw text's MLM loss under each")
    parser.add_argument("--known-row-batches", type=int, default=6, help="fixed MLM batches per target for "
                        "--known-rows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.targets = [t for t in args.targets.split(",") if t]
    args.fits = [f for f in args.fits.split(",") if f]
    unknown = sorted(set(args.targets) - set(TARGETS)) + sorted(set(args.fits) - set(FITS))
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    if args.known_row_batches < 1:
        parser.error("--known-row-batches must be at least 1")
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no checkpoint there (config.json missing)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="row-ceiling-") as tmp:
        found = measure(args, Path(tmp))
    save(args, found, time.perf_counter() - start)
    rows = found["rows"]
    for fit in args.fits:
        mine = [r for r in rows if r["fit"] == fit]
        if mine:
            average = sum(r["fitted_minus_mean"] for r in mine) / len(mine)
            print(f"row fitted on {fit}: {average:+.2f} over the mean row on average "
                  f"({', '.join(r['target'] for r in mine)})")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
