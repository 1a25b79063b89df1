"""Does add-language's row learn anything? MLM loss and zero-shot UPOS per learning rate.

Pretrains hxtool as the few-shot suite does (same recipe, same S and A), then for each target and each
add-language rate: a fresh row (mean of the known rows), A steps of add-language, and then
  - the MLM loss on fixed masked batches of the target's raw text (no dropout, same batches for all rows),
  - zero-shot UPOS on the target's test file.
The same two numbers for the untrained mean row and for each source language's own row say whether the
language row matters at all after this much pretraining.

Usage:
  python benchmarks/add_language_probe.py --device cuda          # minutes on a GPU; about an hour on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.fewshot_curves import PROFILES, eval_data, hardware, hxtool_recipe  # noqa: E402
from hxtool.workflows.add_language import add_language, initial_row  # noqa: E402
from hxtool.config import MLM_TASK, TrainConfig  # noqa: E402
from hxtool.data.corpus import corpus_info  # noqa: E402
from hxtool.data.sources import MlmStream  # noqa: E402
from hxtool.evaluation.metrics import upos_accuracy  # noqa: E402
from hxtool.workflows.pretrain import pretrain  # noqa: E402
from hxtool.store.session import load_model  # noqa: E402
from hxtool.tagging import predict_tags  # noqa: E402


def fixed_batches(model, corpus: Path, count: int, batch_size: int, max_length: int) -> list:
    """`count` masked batches of `corpus`, drawn once (seed 12345) and reused for every row."""
    stream = MlmStream("probe", corpus, corpus_info(corpus).lines, model.backbone.tokenizer, batch_size, max_length,
                       0.15, 12345)
    batches = iter(stream)
    return [next(batches).to(model.device) for _ in range(count)]


@torch.no_grad()
def mlm_loss(model, batches: list, lang_index: int) -> float:
    model.eval()
    adapters = model.hypernet(model.registry.task_index(MLM_TASK), lang_index)
    return statistics.fmean(float(model.mlm_loss(batch, adapters)) for batch in batches)


def score(model, lang: str, test, lang_index: int) -> dict:
    """MLM loss on the target's fixed batches with row `lang_index`; UPOS on its test file tagged as `lang`."""
    loss = mlm_loss(model, test["batches"], lang_index)
    upos = upos_accuracy(test["data"].tags, predict_tags(model, "pos", lang, test["data"].words))
    return {"mlm_loss": round(loss, 3), "upos": round(100 * upos.value, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--targets", default="mt,ug,fo")
    parser.add_argument("--lrs", default="2e-4,2e-3,2e-2", help="add-language rates to try (comma-separated)")
    parser.add_argument("--steps", type=int, help="add-language steps (default: the suite's A)")
    parser.add_argument("--probe-batches", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "add_language_probe.json")
    parser.add_argument("--base-model", help="override the suite's base encoder (e.g. tiny-random:xlm-roberta)")
    parser.add_argument("--source-steps", type=int, help="override the suite's S")
    args = parser.parse_args(argv)
    profile = PROFILES["full"]
    if args.base_model:
        profile = dataclasses.replace(profile, base_model=args.base_model)
    if args.source_steps:
        profile = dataclasses.replace(profile, source_steps=args.source_steps)
    steps = args.steps or profile.lang_steps
    rows: list[dict] = []
    out = {"profile": dataclasses.asdict(profile), "add_language_steps": steps, "hardware": hardware(),
           "device": args.device, "command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": rows}
    with tempfile.TemporaryDirectory(prefix="add-language-probe-") as tmp:
        checkpoint = Path(tmp) / "hxtool"
        clock = time.perf_counter()
        pretrain(hxtool_recipe(profile, args.data_dir), checkpoint, args.device, quiet=True)
        out["pretrain_seconds"] = round(time.perf_counter() - clock, 1)
        for target in args.targets.split(","):
            corpus = args.data_dir / "raw" / f"{target}.txt"
            for attempt, lr in enumerate(float(x) for x in args.lrs.split(",")):
                model, meta = load_model(checkpoint, args.device)  # the pretrained model, without any new row
                if attempt == 0:
                    test = {"data": eval_data(args.data_dir, target, 0),
                            "batches": fixed_batches(model, corpus, args.probe_batches, profile.batch_size,
                                                     profile.max_length)}
                mean_row = initial_row(model, "mean")
                config = TrainConfig(steps=steps, batch_size=profile.batch_size, lr=lr, decay=False, warmup=0.0,
                                     max_length=profile.max_length, seed=1)
                added = add_language(model, meta, target, corpus, Path(tmp) / "added", config, quiet=True)
                index = model.registry.lang_index(target)
                row = model.hypernet.embeddings.language.weight[index]
                rows.append({"target": target, "row": f"add-language lr={lr:g}",
                             "train_first_loss": round(added.result.first_loss, 3),
                             "train_last_loss": round(added.result.final_loss, 3),
                             "moved": round(float((row - mean_row).norm()), 4), "row_norm": round(float(row.norm()), 4),
                             **score(model, target, test, index)})
                print(rows[-1], flush=True)
                if attempt == 0:  # once per target: the reference rows
                    with torch.no_grad():
                        trained = row.clone()
                        model.hypernet.embeddings.language.weight[index] = mean_row
                        rows.append({"target": target, "row": "mean of known rows (untrained)",
                                     **score(model, target, test, index)})
                        print(rows[-1], flush=True)
                        model.hypernet.embeddings.language.weight[index] = trained
                    for code in profile.sources:
                        rows.append({"target": target, "row": f"{code}'s row",
                                     **score(model, code, test, model.registry.lang_index(code))})
                        print(rows[-1], flush=True)
                del model
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
