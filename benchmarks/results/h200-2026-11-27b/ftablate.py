"""Throwaway (issue 10): which part of full fine-tuning's few-shot step buys n = 50?
Same source model as the suite's full_ft; few-shot tunes only a subset of the encoder (+ head)."""
import argparse, json, re, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path.cwd())); sys.path.insert(0, str(Path.cwd() / "benchmarks"))
import fewshot_curves as fc
from hxtool.baselines import full_finetune as ft
from hxtool.data.labelled import read_labelled

SUBSETS = {
    "all": r".",
    "no_emb": r"^(?!embeddings\.)",
    "emb_only": r"^embeddings\.",
    "word_emb_only": r"^embeddings\.word_embeddings",
    "linears": r"layer\.\d+\..*(query|key|value|attention\.output\.dense|intermediate\.dense|(?<!attention\.)output\.dense)\.weight$",
    "attn": r"layer\.\d+\.attention\..*(query|key|value|output\.dense)\.weight$",
    "ffn": r"layer\.\d+\.(intermediate\.dense|output\.dense)\.weight$",
    "norms_bias": r"(LayerNorm|\.bias$)",
    "top6": r"layer\.([6-9]|1[01])\.",
    "bottom6": r"layer\.[0-5]\.",
    "head_only": r"^$",
}
p = argparse.ArgumentParser()
p.add_argument("--subsets", default="all,no_emb"); p.add_argument("--targets", default="mt,ug")
p.add_argument("--shots", default="20,50"); p.add_argument("--seeds", default="1,2,3")
p.add_argument("--data-dir", default="../shared/data"); p.add_argument("--device", default="cpu")
p.add_argument("--base-model", default="pypi:multilingual-e5-small"); p.add_argument("--source-steps", type=int, default=500)
p.add_argument("--eval-limit", type=int, default=0); p.add_argument("--epochs", type=int, default=20)
p.add_argument("--output", required=True)
a = p.parse_args()
prof = fc.Profile(targets=tuple(a.targets.split(",")), shots=tuple(int(x) for x in a.shots.split(",")),
                  seeds=tuple(int(x) for x in a.seeds.split(",")), source_steps=a.source_steps, lang_steps=100,
                  max_length=64, eval_limit=a.eval_limit, epochs=a.epochs, base_model=a.base_model)
data = Path(a.data_dir)
backbone, sources, labels = fc.baseline_setup(prof, data, a.device)
model = ft.FullFinetuneTagger(backbone, labels).to(a.device)
cfg = fc.TrainConfig(steps=prof.source_steps, batch_size=prof.batch_size, lr=prof.encoder_lr, head_lr=prof.head_lr,
                     warmup=0.1, max_length=prof.max_length, seed=1)
ft.train_on_source(model, sources, cfg)
snap = model.snapshot()
names = dict(model.adapted.encoder.named_parameters())
out = {"args": vars(a), "scores": [], "sizes": {}}
for target in prof.targets:
    test = fc.eval_data(data, target, prof.eval_limit); pool = read_labelled("pos", data / fc.TARGETS[target][1])
    model.restore(snap); model.eval()
    from hxtool.evaluation.metrics import upos_accuracy
    out["scores"].append({"subset": "n0", "target": target, "n": 0, "seed": 0,
                          "upos": round(100 * upos_accuracy(test.tags, model.predict(test.words)).value, 2)})
    for sub in a.subsets.split(","):
        keep = [p for k, p in names.items() if re.search(SUBSETS[sub], k)] if sub != "head_only" else []
        out["sizes"][sub] = sum(p.numel() for p in keep)
        model.unfreeze = lambda keep=keep: [p.requires_grad_(True) for p in keep] and keep
        for seed in prof.seeds:
            for n in prof.shots:
                model.restore(snap)
                for prm in names.values(): prm.requires_grad_(False)
                t0 = time.time()
                ft.tune_on_shots(model, target, fc.shots_for(pool, n, seed), fc.tune_config(prof, n, seed, prof.encoder_lr))
                u = round(100 * upos_accuracy(test.tags, model.predict(test.words)).value, 2)
                out["scores"].append({"subset": sub, "target": target, "n": n, "seed": seed, "upos": u,
                                      "seconds": round(time.time() - t0, 1)})
                print(sub, target, n, seed, u, out["sizes"][sub], flush=True)
                Path(a.output).write_text(json.dumps(out, indent=1))
