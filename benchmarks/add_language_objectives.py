"""Does an add-language objective beyond MLM make the new row tag better at zero-shot?

From a pretrained checkpoint (e.g. the few-shot suite's), for each target: score zero-shot POS with the
untrained mean of the source rows ("meanrow"), then train the new row for the same steps, rate and seeded
batches with
  mlm            the MLM loss alone (what `hxtool add-language` does)
  mlm+entW       plus W x the entropy of the POS head's predictions on the target's raw text (words split
                 on whitespace), through the POS adapters generated with the row: ties the row to what
                 tagging reads
  mlm+l2wW       plus W x ||row - mean row||^2 (keeps the row near the known languages)
and score zero-shot again. Nothing is saved. A variant may start elsewhere than the mean row:
  pick[+...]     the source row whose MLM loss on the target's raw text is lowest (typology read off text)
  mix[+...]      the source rows weighted by softmax(-MLM loss / 0.1)
(`pick` and `mix` alone: no training, zero-shot from that start.)

  python benchmarks/add_language_objectives.py --checkpoint CK --targets mt,ug --variants meanrow,mlm,mlm+ent1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hxtool.config import MLM_TASK
from hxtool.data.align import encode_sentences
from hxtool.data.batches import collate_chunks
from hxtool.data.corpus import corpus_info, iter_corpus_lines
from hxtool.data.labelled import read_labelled
from hxtool.data.sources import MlmStream
from hxtool.evaluation.metrics import upos_accuracy
from hxtool.registry import LanguageInfo
from hxtool.store.session import load_model
from hxtool.tagging import predict_tags

TESTS = {"mt": "ud/mt_mudt/test.conllu", "ug": "ud/ug_udt/test.conllu", "fo": "ud/fo_oft/test.conllu"}


def word_batches(path: Path, tokenizer, batch_size: int, max_length: int, seed: int):
    """Endless batches of the corpus's lines split on whitespace, as words to tag (no labels)."""
    lines = [line.split() for line in iter_corpus_lines(path, max_words=60)]
    lines = [words for words in lines if words]
    rng = random.Random(seed)
    while True:
        rng.shuffle(lines)
        for start in range(0, len(lines) - batch_size + 1, batch_size):
            yield collate_chunks(encode_sentences(tokenizer, lines[start:start + batch_size], max_length),
                                 tokenizer.pad_token_id)


def weights(variant: str) -> tuple[float, float]:
    parts = {p[:3]: p[3:] for p in variant.split("+")}
    return float(parts.get("ent", 0) or 0), float(parts.get("l2w", 0) or 0)


@torch.no_grad()
def start_row(model, variant: str, rows: torch.Tensor, mean: torch.Tensor, target: str, corpus: Path,
              args: argparse.Namespace) -> tuple[torch.Tensor, list[float]]:
    """The mean row, or (pick/mix) source rows chosen by their MLM loss on the same target batches."""
    start = variant.split("+")[0]
    if start not in ("pick", "mix"):
        return mean, []
    stream = iter(MlmStream(target, corpus, corpus_info(corpus).lines, model.backbone.tokenizer, args.batch_size,
                            args.max_length, 0.15, args.seed + 1000))
    batches = [next(stream) for _ in range(8)]
    mlm_task = model.registry.task_index(MLM_TASK)
    model.eval()
    losses = []
    for source in args.sources.split(","):
        adapters = model.hypernet(mlm_task, model.registry.lang_index(source))
        losses.append(float(sum(model.mlm_loss(b.to(model.device), adapters) for b in batches) / len(batches)))
    loss = torch.tensor(losses)
    if start == "pick":
        return rows[int(loss.argmin())].clone(), losses
    return (torch.softmax(-(loss - loss.min()) / 0.1, 0).to(rows) @ rows).clone(), losses


def run(args: argparse.Namespace, target: str, variant: str) -> dict:
    torch.manual_seed(args.seed)
    model, _ = load_model(args.checkpoint, args.device)
    emb = model.hypernet.embeddings
    rows = emb.language.weight[[model.registry.lang_index(s) for s in args.sources.split(",")]].detach()
    mean = rows.mean(0)
    index = len(model.registry.languages)
    corpus = args.data_dir / "raw" / f"{target}.txt"
    clock = time.perf_counter()
    start, start_losses = start_row(model, variant, rows, mean, target, corpus, args)
    with emb.language_row(index, start) as row:
        model.set_trainable("lang")
        if variant not in ("meanrow", "pick", "mix"):
            ent_w, l2_w = weights(variant)
            optimizer = torch.optim.AdamW([row], lr=args.lr, weight_decay=0.0)
            tokenizer = model.backbone.tokenizer
            mlm = iter(MlmStream(target, corpus, corpus_info(corpus).lines, tokenizer, args.batch_size,
                                 args.max_length, 0.15, args.seed))
            words = word_batches(corpus, tokenizer, args.batch_size, args.max_length, args.seed)
            mlm_task, pos_task = model.registry.task_index(MLM_TASK), model.registry.task_index("pos")
            model.train()
            for _ in range(args.steps):
                loss = model.mlm_loss(next(mlm).to(model.device), model.hypernet(mlm_task, index))
                if ent_w:
                    batch = next(words).to(model.device)
                    log_p = F.log_softmax(model.tag_logits("pos", batch, model.hypernet(pos_task, index)), -1)
                    loss = loss + ent_w * (-(log_p.exp() * log_p).sum(-1))[batch.word_mask].mean()
                if l2_w:
                    loss = loss + l2_w * (row - mean).pow(2).sum()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([row], 1.0)
                optimizer.step()
            model.eval()
    model.registry.languages.append(LanguageInfo(code=target, source="experiment"))
    test = read_labelled("pos", args.data_dir / TESTS[target])
    learned = emb.language.weight[index].detach()
    score = upos_accuracy(test.tags, predict_tags(model, "pos", target, test.words)).value
    return {"target": target, "variant": variant, "steps": args.steps, "lr": args.lr, "upos": round(100 * score, 2),
            "distance_from_mean": round(float((learned - mean).norm()), 3),
            "start_mlm_losses": dict(zip(args.sources.split(","), [round(x, 3) for x in start_losses])),
            "seconds": round(time.perf_counter() - clock)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a pretrained checkpoint (no targets added)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--targets", default="mt,ug,fo")
    parser.add_argument("--variants", default="meanrow,mlm,mlm+ent1")
    parser.add_argument("--sources", default="en,tr", help="the rows whose mean is the starting row")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, help="append one JSON line per run here")
    args = parser.parse_args(argv)
    for target in args.targets.split(","):
        for variant in args.variants.split(","):
            row = run(args, target, variant)
            print(json.dumps(row), flush=True)
            if args.output:
                with open(args.output, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
