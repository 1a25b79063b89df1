"""The one prediction path: token-budget batches, fused adapter kernels, the checkpoint's pooling in eval,
and a model load that leaves transformers' logging as it found it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_DATA
from hxtool.cli import app
from hxtool.data.align import encode_sentences
from hxtool.data.labelled import read_labelled
from hxtool.errors import HxError
from hxtool.model.backbone import load_backbone
from hxtool.model.hooks import apply_adapter
from hxtool.store.session import load_model
from hxtool.tagging import predict_tags, score_tags, token_batches


@pytest.fixture(scope="module")
def model(pretrained: Path):
    return load_model(pretrained)[0]


def sentences() -> list[list[str]]:
    words = read_labelled("pos", TINY_DATA / "en-pos-dev.conllu").words
    return words + [w * 6 for w in words[:3]] + [["anna"]]  # lengths from 1 word to chunked


def test_token_batches_keep_the_budget_and_every_chunk(model) -> None:
    chunks = encode_sentences(model.backbone.tokenizer, sentences(), 24)
    for budget, cap in ((64, None), (100, 3), (1, None)):
        batches = token_batches(chunks, budget, cap)
        assert sorted(i for b in batches for i in b) == list(range(len(chunks)))
        lengths = [len(chunks[i].input_ids) for b in batches for i in b]
        assert lengths == sorted(lengths)  # shortest first
        for batch in batches:
            longest = max(len(chunks[i].input_ids) for i in batch)
            assert len(batch) == 1 or len(batch) * longest <= budget
            assert cap is None or len(batch) <= cap
    assert all(len(b) == 1 for b in token_batches(chunks, 1))
    with pytest.raises(HxError, match="--max-tokens"):
        token_batches(chunks, 0)


def test_batching_does_not_change_the_tags(model) -> None:
    data = sentences()
    one_by_one = predict_tags(model, "pos", "en", data, batch_size=1, max_length=24)
    for budget in (48, 512, 100_000):
        assert predict_tags(model, "pos", "en", data, max_length=24, max_tokens=budget) == one_by_one
    assert predict_tags(model, "pos", "en", data, batch_size=32, max_length=24) == one_by_one  # the old batching


def test_fused_adapter_equals_the_formula_and_trains() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, requires_grad=True)
    down, down_bias = torch.randn(8, 4, requires_grad=True), torch.randn(4, requires_grad=True)
    up, up_bias = torch.randn(4, 8, requires_grad=True), torch.randn(8, requires_grad=True)
    reference = x + torch.relu(x @ down + down_bias) @ up + up_bias
    fused = apply_adapter(x, down, down_bias, up, up_bias)
    assert torch.allclose(fused, reference, atol=1e-5)
    grads = torch.autograd.grad(fused.sum(), (x, down, down_bias, up, up_bias))
    expected = torch.autograd.grad(reference.sum(), (x, down, down_bias, up, up_bias))
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-5)


def test_eval_tags_with_the_checkpoints_pooling(checkpoint: Path, model) -> None:
    gold = TINY_DATA / "en-pos-dev.conllu"
    data = read_labelled("pos", gold)
    by_pooling = {p: score_tags("pos", data.tags, predict_tags(model, "pos", "en", data.words, pooling=p)).correct
                  for p in ("first", "mean")}
    assert by_pooling["first"] != by_pooling["mean"]  # else this test could not tell them apart
    config = json.loads((checkpoint / "config.json").read_text())
    for event in config["history"]:
        if event["command"] == "pretrain-mlm":
            event["train"]["pooling"] = "mean"
    (checkpoint / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["eval", str(gold), "--task", "pos", "--lang", "en", "-c", str(checkpoint),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["correct"] == by_pooling["mean"]


def test_loading_leaves_transformers_logging_as_it_was(tiny_bert: Path) -> None:
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        load_backbone(str(tiny_bert))
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity(before)
