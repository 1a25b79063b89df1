"""The Python API: what the commands do, for notebooks and scripts, without shelling out.

    import hxtool

    ck = hxtool.load("tiny-model")                      # a checkpoint folder
    ck.add_language("fo", "fo-raw.txt", steps=50)       # writes the checkpoint, like the command
    tags = ck.tag("pos", "fo", [["Hon", "býr", "í", "Havn", "."]])  # one tag per word

Each method is a thin wrapper over the library function its command calls, with the command's
defaults. Methods that change the model write it, under the same lock the commands take, to
`output` if given (later writes then go there too), else back to the folder it was loaded from.
"""

from __future__ import annotations

from pathlib import Path

from hxtool.config import TrainConfig
from hxtool.model.hyperx import HyperX
from hxtool.store.checkpoint import CheckpointMeta, checkpoint_lock
from hxtool.store.session import load_model, save_model, trained_pooling


class Checkpoint:
    """A loaded checkpoint: the model, its metadata and the folder it is written back to."""

    def __init__(self, model: HyperX, meta: CheckpointMeta, folder: Path) -> None:
        self.model = model
        self.meta = meta
        self.folder = Path(folder)

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> "Checkpoint":
        from hxtool.model.backbone import default_device

        model, meta = load_model(folder, default_device(device))
        return cls(model, meta, Path(folder))

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.folder)!r}, tasks={self.tasks}, languages={self.languages})"

    @property
    def languages(self) -> list[str]:
        return self.model.registry.language_codes()

    @property
    def tasks(self) -> list[str]:
        return [t.name for t in self.model.registry.tasks if not t.is_mlm]

    def _target(self, output: str | Path | None) -> Path:
        return Path(output) if output is not None else self.folder

    def add_language(self, code: str, corpus: str | Path, *, steps: int = 200, batch_size: int = 16,
                     max_length: int = 128, lr: float | None = None, init: str = "mean", seed: int = 1,
                     overwrite: bool = False, output: str | Path | None = None, quiet: bool = True,
                     adapt_encoder: bool = False, adapt_steps: int = 100, anchor: float = 1.0):
        """`hxtool add-language`: learn `code`'s embedding from raw text; returns its AddLanguageReport.
        `adapt_encoder`/`adapt_steps`/`anchor` as the command's --adapt-encoder/--adapt-steps/--anchor."""
        from hxtool.workflows.add_language import ADD_LANGUAGE_LR, EncoderAdaptation, add_language

        config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr or ADD_LANGUAGE_LR, max_length=max_length,
                             decay=False, warmup=0.0, seed=seed)
        config.validate()
        target = self._target(output)
        with checkpoint_lock(target):
            report = add_language(self.model, self.meta, code, Path(corpus), target, config, init=init,
                                  overwrite=overwrite, quiet=quiet,
                                  adapt=EncoderAdaptation(adapt_steps, anchor) if adapt_encoder else None)
        self.folder, self.meta = target, report.meta
        return report

    def fewshot(self, task: str, lang: str, train: str | Path, n: int, *, eval: str | Path | None = None,
                epochs: int = 50, batch_size: int = 16, lr: float | None = None, seed: int = 1,
                tune: str = "auto", output: str | Path | None = None, quiet: bool = True,
                self_train: int | None = None, raw: str | Path | None = None, keep_encoder_updates: bool = False):
        """`hxtool fewshot`: tune on n sentences drawn from a labelled file; returns its FewshotReport.
        `self_train`/`raw`/`keep_encoder_updates` as the command's --self-train/--raw/--keep-encoder-updates
        (None: the command's defaults)."""
        from hxtool.data.labelled import read_labelled
        from hxtool.errors import HxError
        from hxtool.workflows.fewshot import FEWSHOT_LR, fewshot, fewshot_steps
        from hxtool.workflows.self_training import requested

        if epochs <= 0:
            raise HxError(f"epochs must be at least 1, got {epochs}")
        config = TrainConfig(steps=fewshot_steps(max(n, 1), batch_size, epochs), batch_size=batch_size,
                             lr=lr or FEWSHOT_LR, decay=False, warmup=0.0, seed=seed,
                             pooling=trained_pooling(self.meta))
        train_data = read_labelled(task, train)
        eval_data = read_labelled(task, eval) if eval is not None else None
        source = self.folder
        target = self._target(output)
        with checkpoint_lock(target):
            report = fewshot(self.model, self.meta, source, task, lang, train_data, eval_data, n, config,
                             tune=tune, output=target, quiet=quiet,
                             self_training=requested(self_train, raw), keep_encoder_updates=keep_encoder_updates)
        self.folder, self.meta = target, report.meta
        return report

    def tag(self, task: str, lang: str, sentences: list[list[str]], *, pooling: str | None = None,
            batch_size: int = 32) -> list[list[str]]:
        """One tag per word of every (already tokenised) sentence."""
        from hxtool.tagging import predict_tags

        self.model.registry.task_index(task)
        self.model.registry.lang_index(lang)
        return predict_tags(self.model, task, lang, sentences, batch_size=batch_size,
                            pooling=pooling or trained_pooling(self.meta))

    def save(self, folder: str | Path) -> Path:
        """Write the model as a checkpoint folder (a copy: later writes go there)."""
        target = self._target(folder)
        with checkpoint_lock(target):
            self.meta = save_model(self.model, self.meta, target, {"command": "api.save"})
        self.folder = target
        return target

    def export_language(self, code: str, path: str | Path) -> Path:
        """`hxtool export-language`: write what `code` owns and its provenance to one file."""
        from hxtool.store.language_file import export_language

        self.model.registry.lang_index(code)
        return export_language(self.model, code, path, checkpoint=self.folder)

    def import_language(self, path: str | Path, *, overwrite: bool = False, output: str | Path | None = None):
        """`hxtool import-language`: add a language exported from a copy of the same pretraining."""
        from hxtool.store.language_file import import_language

        target = self._target(output)
        with checkpoint_lock(target):
            report = import_language(self.model, self.meta, path, target, overwrite=overwrite)
        self.folder, self.meta = target, report.meta
        return report


def load(folder: str | Path, device: str | None = None) -> Checkpoint:
    """Load a checkpoint folder (device: cpu or cuda, default $HXTOOL_DEVICE, else cpu)."""
    return Checkpoint.load(folder, device)
