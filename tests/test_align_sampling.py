"""Word/subword alignment, chunking of long sentences, and temperature sampling."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hxtool.data.align import chunk_words, encode_sentences, word_pieces
from hxtool.training.sampler import TemperatureSampler, temperature_probabilities


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def test_zero_piece_word_and_spaced_form_are_still_one_word_each(tokenizer) -> None:
    words = ["hello", "\u200b", "new york", "x"]
    pieces = word_pieces(tokenizer, [words])[0]
    assert len(pieces) == 4
    assert pieces[1] == [tokenizer.unk_token_id]  # zero pieces -> unknown token, never dropped
    assert len(pieces[2]) > len(tokenizer.tokenize("new")), "a FORM with a space keeps all its pieces"


def test_long_sentences_are_chunked_into_whole_words(tokenizer) -> None:
    words = [f"w{i}" for i in range(40)]  # "w0" = 2 pieces, "w10" = 3 pieces
    chunks = encode_sentences(tokenizer, [words, ["ab"]], max_length=16, labels=[list(range(40)), [0]])
    first = [c for c in chunks if c.sentence == 0]
    assert len(first) > 1
    assert all(len(c.input_ids) <= 16 for c in chunks)
    covered = [c.first_word + i for c in first for i in range(c.n_words)]
    assert covered == list(range(40)), "every word appears exactly once, in order"
    assert [label for c in first for label in c.labels] == list(range(40))
    for c in chunks:
        assert c.input_ids[0] == tokenizer.cls_token_id and c.input_ids[-1] == tokenizer.sep_token_id
        assert all(1 <= s < e <= len(c.input_ids) - 1 for s, e in c.spans)


def test_over_long_single_word_keeps_its_first_pieces() -> None:
    chunks = chunk_words([[5] * 3, [6] * 50, [7]], max_length=10, cls_id=1, sep_id=2)
    assert [c.n_words for c in chunks] == [1, 1, 1]
    assert chunks[1].input_ids == [1] + [6] * 8 + [2]


def test_empty_sentence_gives_one_empty_chunk() -> None:
    chunks = chunk_words([], max_length=10, cls_id=1, sep_id=2)
    assert len(chunks) == 1 and chunks[0].n_words == 0


def test_temperature_probabilities() -> None:
    probs = temperature_probabilities([100, 1], temperature=1.0)
    assert probs == pytest.approx([100 / 101, 1 / 101])
    flat = temperature_probabilities([10_000, 100], temperature=5.0)
    assert flat == pytest.approx(np.array([10_000 ** 0.2, 100 ** 0.2]) / (10_000 ** 0.2 + 100 ** 0.2))
    assert temperature_probabilities([5, 500], temperature=1e6) == pytest.approx([0.5, 0.5], abs=1e-4)


def test_sampler_proportions_and_determinism() -> None:
    pairs = [("pos", "en"), ("pos", "tr"), ("mlm", "ug")]
    sizes = [12_000, 3_000, 200]
    sampler = TemperatureSampler(pairs, sizes, temperature=5.0, seed=3)
    draws = [sampler.sample(step) for step in range(20_000)]
    counts = Counter(draws)
    for pair, p in zip(pairs, sampler.probabilities):
        assert counts[pair] / len(draws) == pytest.approx(p, abs=0.015)
    again = TemperatureSampler(pairs, sizes, temperature=5.0, seed=3)
    assert [again.sample(step) for step in range(500)] == draws[:500]
    other = TemperatureSampler(pairs, sizes, temperature=5.0, seed=4)
    assert [other.sample(step) for step in range(500)] != draws[:500]
    # Resuming at step k draws what an uninterrupted run draws at step k.
    assert again.sample(12_345) == draws[12_345]


def test_recipe_weights_scale_the_temperature_probabilities() -> None:
    sizes, weights = [10_000, 100, 100], [1.0, 3.0, 1.0]
    plain = temperature_probabilities(sizes, 5.0)
    weighted = temperature_probabilities(sizes, 5.0, weights)
    expected = plain * np.array(weights) / (plain * np.array(weights)).sum()
    assert weighted == pytest.approx(expected)
    assert weighted[1] == pytest.approx(3 * weighted[2])
    with pytest.raises(ValueError):
        TemperatureSampler([("pos", "en"), ("mlm", "en")], [1, 1], 5.0, 1, weights=[1.0])
