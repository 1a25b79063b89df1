"""Tagging edge cases: chunked long sentences, zero-piece and spaced words, mean pooling, labels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY_DATA
from hxtool.data.align import encode_sentences
from hxtool.data.batches import collate_chunks
from hxtool.data.labelled import label_ids, read_labelled
from hxtool.errors import DataError
from hxtool.store.session import load_model
from hxtool.tagging import tag_file
from hxtool.tagging import predict_tags


@pytest.fixture(scope="module")
def model(pretrained: Path):
    return load_model(pretrained)[0]


def test_chunked_predictions_equal_their_parts(model) -> None:
    long = ["the", "big", "dog", "sees", "anna", "."] * 30  # far beyond max_length=24
    whole = predict_tags(model, "pos", "en", [long], max_length=24)[0]
    assert len(whole) == len(long) and all(whole)
    # Each chunk is tagged as if it were a sentence of its own.
    chunks = encode_sentences(model.backbone.tokenizer, [long], 24)
    assert len(chunks) > 5
    first = chunks[0]
    alone = predict_tags(model, "pos", "en", [long[: first.n_words]], max_length=24)[0]
    assert whole[: first.n_words] == alone


def test_zero_piece_and_spaced_words_get_tags(model, tmp_path: Path) -> None:
    source = tmp_path / "odd.conllu"
    source.write_text("1\tthe\t_\t_\t_\t_\t_\t_\t_\t_\n2\t\u200b\t_\t_\t_\t_\t_\t_\t_\t_\n"
                      "3\tnew york\t_\t_\t_\t_\t_\t_\t_\t_\n4\t\u0007\t_\t_\t_\t_\t_\t_\t_\t_\n\n", encoding="utf-8")
    tagged = tag_file(model, source, "pos", "en", quiet=True)
    rows = [line.split("\t") for line in tagged.text.splitlines() if line]
    assert [r[1] for r in rows] == ["the", "\u200b", "new york", "\u0007"]
    assert all(r[3] != "_" for r in rows)


def test_mean_pooling_averages_the_pieces(model) -> None:
    words = [["köpek", "sees", "izmir"]]
    chunks = encode_sentences(model.backbone.tokenizer, words, 64)
    batch = collate_chunks(chunks, model.backbone.tokenizer.pad_token_id)
    with torch.no_grad():
        adapters = model.adapters("pos", "en")
        states = model.encode(batch.input_ids, batch.attention_mask, adapters)
        pooled = model.word_states(batch, adapters, pooling="mean")
        first = model.word_states(batch, adapters, pooling="first")
    for i, (start, end) in enumerate(chunks[0].spans):
        assert end - start > 1  # several pieces, so first and mean differ
        assert torch.allclose(pooled[0, i], states[0, start:end].mean(0), atol=1e-6)
        assert torch.equal(first[0, i], states[0, start])
    assert len(predict_tags(model, "pos", "en", words, pooling="mean")[0]) == 3


def test_unknown_training_label_names_file_and_line(tmp_path: Path) -> None:
    text = (TINY_DATA / "tr-pos-train.conllu").read_text().split("\n")
    text[5] = text[5].replace("\tDET\t", "\tINTJ\t").replace("\tNOUN\t", "\tINTJ\t").replace(
        "\tADJ\t", "\tINTJ\t").replace("\tPROPN\t", "\tINTJ\t")
    odd = tmp_path / "odd.conllu"
    odd.write_text("\n".join(text))
    data = read_labelled("pos", odd)
    with pytest.raises(DataError, match=r"odd.conllu:6: label 'INTJ'"):
        label_ids(data, ["ADJ", "ADP", "DET", "NOUN", "PROPN", "PUNCT", "VERB"])
    ner = tmp_path / "odd.tsv"
    ner.write_text("anna\tB-PER\n\noslo\tB-MISC\n")
    with pytest.raises(DataError, match=r"odd.tsv:3: label 'B-MISC'"):
        label_ids(read_labelled("ner", ner), ["O", "B-LOC", "B-PER"])
