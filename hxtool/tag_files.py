"""Tag whole files: CoNLL-U (only the tagged column changes), plain text, or token-per-line TSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hxtool.data import conllu_io, ner_io
from hxtool.errors import HxError
from hxtool.model.hyperx import HyperX
from hxtool.progress import count_progress
from hxtool.tagging import predict_tags

FORMATS = ("conllu", "text", "tsv")


@dataclass
class TaggedFile:
    text: str
    sentences: int
    words: int


def tag_file(model: HyperX, path: Path, task: str, lang: str, fmt: str = "conllu", pooling: str = "first",
             batch_size: int = 32, quiet: bool = False) -> TaggedFile:
    """Read `path`, predict one tag per word, and return the file's text with the predictions in it."""
    if fmt not in FORMATS:
        raise HxError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model.registry.task_index(task)
    model.registry.lang_index(lang)
    if fmt == "conllu":
        doc = conllu_io.read_conllu(path)
        sentences = [s.words for s in doc.sentences]
    elif fmt == "text":
        sentences = conllu_io.read_text(path)
        doc = conllu_io.sentences_from_text(sentences)
    else:
        tsv = ner_io.read_tsv_document(path)
        sentences = tsv.sentences
    words = sum(len(s) for s in sentences)
    with count_progress(f"tagging {path.name}", words, quiet=quiet) as advance:
        predicted = predict_tags(model, task, lang, sentences, batch_size=batch_size, pooling=pooling,
                                 progress=advance)
    if fmt == "tsv":
        text = ner_io.format_tsv_with_tags(tsv, predicted)
    else:
        setter = conllu_io.set_upos if task == "pos" else conllu_io.set_misc_ner
        doc.sentences = [setter(s, tags) for s, tags in zip(doc.sentences, predicted)]
        text = conllu_io.format_conllu(doc)
    return TaggedFile(text, len(sentences), words)
