"""The quickstart: the whole workflow on the embedded multilingual-e5-small and real data, offline.

pretrain-mlm (POS en/tr/zh, NER en/zh, MLM en/tr/zh) -> add-language ug from raw text -> fewshot pos ug
with n = 20 -> tag the ug test file -> a table of accuracy before and after few-shot. Sized to finish
within 15 minutes on 2 CPU cores. `--mlm-recipe recipes/many-languages.toml` (with the full data) adds MLM in
many more languages to the same pretraining steps.

Without a data folder it runs on the small real data set shipped in the package (PACKAGED_DATA, laid out
like ../shared/data; its quickstart.json names the languages it holds, as only redistributable data
are shipped: no Turkish treebank, so Kazakh is the Turkic POS source there).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from hxtool.config import HyperConfig, LabelledSource, MlmSource, Recipe, SIZES, TrainConfig
from hxtool.data.datadir import raw_corpus, task_file
from hxtool.model.offline_base import PYPI_E5

SOURCE_POS = ("en", "tr", "zh")
SOURCE_NER = ("en", "zh")
TARGET = "ug"
PACKAGED_DATA = Path(__file__).resolve().parents[1] / "resources" / "quickstart"
MANIFEST = "quickstart.json"  # {"pos": [...], "ner": [...], "mlm": [...], "target": "ug"}


@dataclass(frozen=True)
class QuickstartLanguages:
    pos: tuple[str, ...] = SOURCE_POS
    ner: tuple[str, ...] = SOURCE_NER
    mlm: tuple[str, ...] = SOURCE_POS
    target: str = TARGET


def quickstart_languages(data: Path) -> QuickstartLanguages:
    """The languages of a data folder's quickstart.json when it has one, else those of ../shared/data."""
    manifest = data / MANIFEST
    if not manifest.is_file():
        return QuickstartLanguages()
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    return QuickstartLanguages(tuple(raw["pos"]), tuple(raw["ner"]), tuple(raw["mlm"]), raw["target"])


@dataclass
class QuickstartReport:
    folder: Path
    before: float  # UPOS accuracy on the ug test file after add-language, before few-shot
    after: float  # after few-shot
    tagged: Path
    seconds: dict[str, float] = field(default_factory=dict)
    mlm_loss: float = float("nan")  # add-language's final (smoothed) MLM loss
    pretrain_losses: dict[str, float] = field(default_factory=dict)
    data: Path | None = None  # the data folder it ran on (PACKAGED_DATA without --data-dir)


def quickstart_recipe(data: Path, base_model: str = PYPI_E5, steps: int = 300, seed: int = 1,
                      mlm_recipe: Path | None = None) -> Recipe:
    """The quickstart's pretraining; `mlm_recipe` adds that recipe's MLM languages (not the target: add-language
    brings it) at the same steps and the same share of labelled batches (hxtool.training.mixing)."""
    langs = quickstart_languages(data)
    labelled = [LabelledSource("pos", lang, task_file(data, "pos", lang, "train")) for lang in langs.pos]
    labelled += [LabelledSource("ner", lang, task_file(data, "ner", lang, "train")) for lang in langs.ner]
    mlm = [MlmSource(lang, raw_corpus(data, lang)) for lang in langs.mlm]
    # A short, fast schedule: small batches and sequences; the paper's rate for the hypernetwork and
    # the default higher rate for the heads (the new MLM head included).
    train = TrainConfig(steps=steps, batch_size=16, lr=1e-4, warmup=0.1, max_length=128, seed=seed)
    recipe = Recipe(base_model=base_model, model=HyperConfig(**SIZES["base"]), train=train, data=labelled, mlm=mlm)
    if mlm_recipe is None:
        return recipe
    from hxtool.training.mixing import recipe_mlm_sources, with_mlm_languages

    return with_mlm_languages(recipe, recipe_mlm_sources(mlm_recipe, data, leave_out={langs.target}))


def run_quickstart(data: Path | None, folder: Path, device: str = "cpu", steps: int = 300, add_steps: int = 80,
                   n: int = 20, epochs: int = 50, base_model: str = PYPI_E5, quiet: bool = False,
                   mlm_recipe: Path | None = None) -> QuickstartReport:
    from hxtool.workflows.add_language import ADD_LANGUAGE_LR, add_language
    from hxtool.data.labelled import read_labelled
    from hxtool.store.atomic import atomic_write_text
    from hxtool.workflows.fewshot import FEWSHOT_LR, fewshot, fewshot_steps
    from hxtool.workflows.pretrain import pretrain
    from hxtool.store.session import load_model
    from hxtool.tagging import tag_file
    from hxtool.tagging import score_tags

    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now

    data = PACKAGED_DATA if data is None else data
    target = quickstart_languages(data).target
    recipe = quickstart_recipe(data, base_model, steps, mlm_recipe=mlm_recipe)
    checkpoint = folder / "model"
    pretrained = pretrain(recipe, checkpoint, device, quiet=quiet)
    lap("pretrain-mlm")
    model, meta = load_model(checkpoint, device)
    add_config = TrainConfig(steps=add_steps, batch_size=16, lr=ADD_LANGUAGE_LR, max_length=128, decay=False,
                             warmup=0.0, seed=1)
    added = add_language(model, meta, target, raw_corpus(data, target), checkpoint, add_config, quiet=quiet)
    lap("add-language")
    train = read_labelled("pos", task_file(data, "pos", target, "train"))
    test_file = task_file(data, "pos", target, "test")
    test = read_labelled("pos", test_file)
    config = TrainConfig(steps=fewshot_steps(n, 16, epochs), batch_size=16, lr=FEWSHOT_LR, decay=False,
                         warmup=0.0, seed=1)
    # The default --tune auto (lang+head+lora at n = 20): ug's row, its own copy of the pos head and its own
    # low-rank encoder updates; other languages keep theirs.
    report = fewshot(model, added.meta, checkpoint, "pos", target, train, test, n, config, quiet=quiet)
    lap("fewshot")
    tagged = tag_file(model, test_file, "pos", target, quiet=quiet)
    out = folder / f"{target}-test.tagged.conllu"
    atomic_write_text(out, tagged.text)
    lap("tag")
    from hxtool.data.conllu_io import read_conllu

    predicted = [s.upos for s in read_conllu(out).sentences]
    after = score_tags("pos", test.tags, predicted).value
    losses = {f"{t}/{lang}": v for (t, lang), v in pretrained.result.loss_per_pair.items()}
    return QuickstartReport(folder, report.before.value, after, out, seconds, added.result.final_loss, losses, data)
