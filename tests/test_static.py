"""Static adapters (the MAD-X-style baseline): shapes, identity at init, the same hooks, gradients."""

from __future__ import annotations

import pytest
import torch

from hxtool.config import HyperConfig
from hxtool.model.backbone import load_backbone
from hxtool.model.hypernet import AdapterWeights
from hxtool.model.hyperx import HyperX
from hxtool.model.static import StaticAdapters
from hxtool.model.tiny import build_tiny_model
from hxtool.registry import LanguageInfo, Registry, TaskInfo

SMALL = HyperConfig(task_dim=4, lang_dim=4, layer_dim=4, projected_dim=8, bottleneck=6)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> HyperX:
    path = build_tiny_model(tmp_path_factory.mktemp("static") / "bert", "bert")
    registry = Registry([TaskInfo("mlm"), TaskInfo("pos", ["NOUN", "VERB", "X"])],
                        [LanguageInfo("en", "recipe"), LanguageInfo("tr", "recipe")])
    return HyperX(load_backbone(str(path)), SMALL, registry)


def inputs(model: HyperX) -> tuple[torch.Tensor, torch.Tensor]:
    tok = model.backbone.tokenizer
    ids = torch.tensor([[tok.cls_token_id, 7, 8, 9, 10, tok.sep_token_id],
                        [tok.cls_token_id, 11, 12, tok.sep_token_id, tok.pad_token_id, tok.pad_token_id]])
    return ids, (ids != tok.pad_token_id).long()


def same_size(model: HyperX) -> StaticAdapters:
    return StaticAdapters(model.backbone.num_layers, model.backbone.hidden_size, SMALL.bottleneck)


def test_shapes_match_generated_adapters(model: HyperX) -> None:
    static = same_size(model)()
    generated = model.adapters("pos", "en")
    assert isinstance(static, AdapterWeights)
    for name in ("down", "down_bias", "up", "up_bias"):
        assert getattr(static, name).shape == getattr(generated, name).shape, name
    assert static.down.shape == (2, 32, 6) and static.up.shape == (2, 6, 32)
    adapters = same_size(model)
    assert adapters.num_parameters() == 2 * (32 * 6 + 6 + 6 * 32 + 32)
    assert sorted(dict(adapters.named_parameters())) == ["down", "down_bias", "up", "up_bias"]


def test_identity_at_init_and_active_through_the_hooks(model: HyperX) -> None:
    ids, mask = inputs(model)
    adapters = same_size(model)
    with torch.no_grad():
        bare = model.encode(ids, mask, None)
        assert torch.equal(bare, model.encode(ids, mask, adapters())), "a fresh static set must be the identity"
        adapters.up.normal_(std=0.1)
        changed = model.encode(ids, mask, adapters())
    assert not torch.allclose(bare, changed)


def test_same_weights_give_the_same_outputs_as_generated_adapters(model: HyperX) -> None:
    ids, mask = inputs(model)
    generated = model.adapters("pos", "tr")
    adapters = same_size(model)
    with torch.no_grad():
        generated.up.normal_(std=0.1)  # make it act; a copy so the hypernetwork is untouched
        for name in ("down", "down_bias", "up", "up_bias"):
            getattr(adapters, name).copy_(getattr(generated, name))
        expected = model.encode(ids, mask, generated)
        got = model.encode(ids, mask, adapters())
    assert torch.allclose(expected, got)


def test_gradients_reach_only_the_static_adapters(model: HyperX) -> None:
    ids, mask = inputs(model)
    adapters = same_size(model)
    assert all(not p.requires_grad for p in model.encoder.parameters())  # the base model is frozen
    model.zero_grad(set_to_none=True)
    model.encode(ids, mask, adapters()).pow(2).sum().backward()
    # At init only the up side sees a gradient (down's signal goes through the zero up-projection) ...
    assert adapters.up.grad.abs().sum() > 0 and adapters.up_bias.grad.abs().sum() > 0
    assert adapters.down.grad.abs().sum() == 0
    # ... and once up is non-zero, every tensor of the set does.
    adapters.zero_grad()
    with torch.no_grad():
        adapters.up.normal_(std=0.1)
    model.encode(ids, mask, adapters()).pow(2).sum().backward()
    for name, param in adapters.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.parameters()), "the encoder, hypernetwork and heads stay untouched"


def test_stacked_with_generated_adapters(model: HyperX) -> None:
    """A list of sets is applied in order, as MAD-X stacks a language adapter under a task adapter."""
    ids, mask = inputs(model)
    lang = same_size(model)
    with torch.no_grad():
        lang.up.normal_(std=0.1)
        alone = model.encode(ids, mask, lang())
        stacked = model.encode(ids, mask, [lang(), model.adapters("pos", "en")])  # the second is identity
    assert torch.allclose(alone, stacked)


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        StaticAdapters(2, 32, 0)
