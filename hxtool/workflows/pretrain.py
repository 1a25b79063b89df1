"""pretrain-mlm: train the hypernetwork, heads and LayerNorms on labelled tasks plus MLM per language."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hxtool.config import MLM_TASK, Recipe
from hxtool.data.align import encode_sentences
from hxtool.data.corpus import corpus_info
from hxtool.data.labelled import LabelledData, label_ids, label_list, read_labelled
from hxtool.data.sources import MlmStream, TaggingStream
from hxtool.errors import HxError
from hxtool.model.backbone import load_backbone
from hxtool.model.hyperx import HyperX
from hxtool.registry import LanguageInfo, Registry, TaskInfo, check_language_code
from hxtool.store.session import new_meta, save_model
from hxtool.tagging import predict_tags, score_tags
from hxtool.training import distributed
from hxtool.model import count_parameters
from hxtool.training.loop import Resumable, TrainResult, param_groups, train
from hxtool.training.objectives import hyperx_loss
from hxtool.training.precision import resolve_precision
from hxtool.training.resume import discard_state, resume_dir


@dataclass
class PretrainReport:
    output: Path
    result: TrainResult
    trainable: int
    dev_scores: dict[str, float]


def build_registry(recipe: Recipe, labelled: dict[tuple[str, str], LabelledData]) -> Registry:
    tasks = [TaskInfo(MLM_TASK)]
    for task in dict.fromkeys(src.task for src in recipe.data):
        tasks.append(TaskInfo(task, label_list(task, [d for (t, _), d in labelled.items() if t == task])))
    languages = []
    for code in recipe.languages:
        check_language_code(code)
        corpus = next((src.corpus for src in recipe.mlm if src.lang == code), None)
        info = corpus_info(corpus) if corpus is not None else None
        languages.append(LanguageInfo(
            code=code, source="recipe",
            corpus={"path": str(corpus), "sha256": info.sha256, "lines": info.lines} if info else None,
            labelled=[src.task for src in recipe.data if src.lang == code],
        ))
    return Registry(tasks, languages)


def pretrain(recipe: Recipe, output: Path, device: str = "cpu", quiet: bool = False,
             save_every: int = 0, resume: bool = False, precision: str | None = None) -> PretrainReport:
    """Train a new checkpoint from a recipe.

    Under torchrun every rank calls this: each trains on its shard of every global batch
    (`train.batch_size` is the global batch), and rank 0 alone evaluates and writes the checkpoint.
    """
    from transformers import set_seed

    device = distributed.setup(device)
    precision = resolve_precision(precision, device)
    pairs = [(src.task, src.lang) for src in recipe.data] + [(MLM_TASK, src.lang) for src in recipe.mlm]
    duplicates = {p for p in pairs if pairs.count(p) > 1}
    if duplicates:
        raise HxError(f"the recipe lists {sorted(duplicates)[0]} more than once")
    labelled = {(src.task, src.lang): read_labelled(src.task, src.train, src.format) for src in recipe.data}
    dev = {(src.task, src.lang): read_labelled(src.task, src.dev, src.format) for src in recipe.data if src.dev}
    registry = build_registry(recipe, labelled)
    backbone = load_backbone(recipe.base_model, device)
    set_seed(recipe.train.seed)  # the hypernetwork's and heads' initial weights come from the seed too
    model = HyperX(backbone, recipe.model, registry).to(device)
    for task in registry.tasks:  # labels of a closed set that no training file holds start unlikely
        if not task.is_mlm:
            seen = {tag for (t, _), d in labelled.items() if t == task.name for tags in d.tags for tag in tags}
            model.mute_labels(task.name, [label for label in task.labels if label not in seen])
    cfg = recipe.train
    tokenizer = backbone.tokenizer
    streams: list = []
    for src in recipe.data:
        data = labelled[(src.task, src.lang)]
        labels = label_ids(data, registry.task(src.task).labels)
        chunks = encode_sentences(tokenizer, data.words, cfg.max_length, labels)
        streams.append(TaggingStream(src.task, src.lang, chunks, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                                     weight=src.weight))
    for src in recipe.mlm:
        lines = registry.language(src.lang).corpus["lines"]
        streams.append(MlmStream(src.lang, src.corpus, lines, tokenizer, cfg.batch_size, cfg.max_length,
                                 cfg.mlm_probability, cfg.seed, weight=src.weight))

    def evaluate() -> tuple[float, dict[str, float]]:
        scores = {}
        for (task, lang), data in dev.items():
            predicted = predict_tags(model, task, lang, data.words, pooling=cfg.pooling)
            scores[f"{task}/{lang}"] = score_tags(task, data.tags, predicted).value
        return sum(scores.values()) / len(scores), scores

    params = model.set_trainable("all")
    signature = {"command": "pretrain-mlm", "base_model": recipe.base_model, "train": cfg.signature(),
                 "pairs": [list(p) for p in pairs], "model": dataclasses.asdict(recipe.model),
                 "precision": precision}
    weights = [s.weight for s in streams]
    if any(w != 1.0 for w in weights):  # only then: an unweighted run resumes state saved before weights existed
        signature["weights"] = weights
    resumable = Resumable(resume_dir(output), save_every, resume, signature)
    rates = {id(p): cfg.head_lr for p in [*model.heads.parameters(), *model.mlm_head.parameters()]}
    if cfg.embedding_lr is not None:
        rates.update({id(p): cfg.embedding_lr for p in model.hypernet.embeddings.parameters()})
    result = train(model, hyperx_loss(model, cfg.pooling), streams, param_groups(params, cfg.lr, rates), cfg,
                   evaluate=evaluate if dev else None, description="pretrain-mlm", quiet=quiet,
                   resumable=resumable, precision=precision)
    dev_scores = dict(result.best_details)
    for lang in registry.languages:
        lang.steps = sum(n for (_, code), n in result.steps_per_pair.items() if code == lang.code)
        lang.mlm_loss = result.loss_per_pair.get((MLM_TASK, lang.code))
    event = {"command": "pretrain-mlm", "recipe": str(recipe.path), "steps": result.steps,
             "train": dataclasses.asdict(cfg), "best_step": result.best_step, "dev": dict(dev_scores),
             "world_size": result.world_size, "precision": result.precision}
    if distributed.is_main():
        save_model(model, new_meta(model), output, event, world_size=result.world_size, precision=result.precision)
        discard_state(output)
    distributed.barrier()  # no rank returns before the checkpoint is there
    return PretrainReport(output, result, count_parameters(params), dev_scores)
