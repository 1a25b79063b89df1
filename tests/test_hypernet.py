"""The model: shapes, identity at initialisation, hooks on every supported architecture, MLM head."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from hxtool.config import HyperConfig
from hxtool.model.backbone import load_backbone
from hxtool.model.hyperx import HyperX
from hxtool.model.hypernet import HyperNetwork
from hxtool.model.tiny import build_tiny_model
from hxtool.registry import LanguageInfo, Registry, TaskInfo

SMALL = HyperConfig(task_dim=4, lang_dim=4, layer_dim=4, projected_dim=8, bottleneck=6)


def registry() -> Registry:
    return Registry([TaskInfo("mlm"), TaskInfo("pos", ["NOUN", "VERB", "X"])],
                    [LanguageInfo("en", "recipe"), LanguageInfo("tr", "recipe")])


def test_generated_adapter_shapes() -> None:
    net = HyperNetwork(n_tasks=2, n_langs=3, n_layers=5, hidden=12, config=SMALL)
    weights = net(1, 2)
    assert weights.down.shape == (5, 12, 6)
    assert weights.down_bias.shape == (5, 6)
    assert weights.up.shape == (5, 6, 12)
    assert weights.up_bias.shape == (5, 12)
    assert net.embeddings.task.weight.shape == (2, 4)
    assert net.embeddings.language.weight.shape == (3, 4)
    assert net.embeddings.layer.weight.shape == (5, 4)


def test_all_layers_come_from_one_generator_call() -> None:
    net = HyperNetwork(2, 2, 7, 10, SMALL)
    calls = []
    net.generator.linear.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    net(0, 1)
    assert calls == [torch.Size([7, SMALL.projected_dim])]


def test_sources_differ_by_task_language_and_layer() -> None:
    net = HyperNetwork(2, 2, 3, 10, SMALL)
    a, b, c = net(0, 0), net(1, 0), net(0, 1)
    assert not torch.equal(a.down, b.down) and not torch.equal(a.down, c.down)
    assert not torch.equal(a.down[0], a.down[1])


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta", "distilbert"])
def test_identity_at_init_and_adapters_act_through_hooks(arch: str, tmp_path) -> None:
    backbone = load_backbone(str(build_tiny_model(tmp_path / arch, arch)))
    model = HyperX(backbone, SMALL, registry())
    ids = torch.tensor([[backbone.tokenizer.cls_token_id, 7, 8, 9, backbone.tokenizer.sep_token_id]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        bare = model.encode(ids, mask, None)
        adapted = model.encode(ids, mask, model.adapters("pos", "en"))
        assert torch.equal(bare, adapted), "identity init must leave the frozen encoder's outputs unchanged"
        # Once the up-projection is non-zero, the hooks really change every layer's output.
        model.hypernet.generator.linear.weight.normal_(std=0.1)
        changed = model.encode(ids, mask, model.adapters("pos", "en"))
    assert not torch.allclose(bare, changed)
    assert backbone.num_layers == 2
    assert all(not p.requires_grad for p in backbone.encoder.parameters())


def test_paper_init_is_not_identity(tiny_bert) -> None:
    backbone = load_backbone(str(tiny_bert))
    config = HyperConfig(**{**SMALL.__dict__, "init": "paper"})
    model = HyperX(backbone, config, registry())
    adapters = model.adapters("pos", "tr")
    assert adapters.up.abs().sum() > 0
    assert model.hypernet.projector.net[0].weight.std() < 0.02  # N(0, 0.01)


def test_mlm_head_at_masked_positions_equals_full_logits(tiny_bert) -> None:
    backbone = load_backbone(str(tiny_bert))
    model = HyperX(backbone, SMALL, registry())
    states = torch.randn(2, 6, backbone.hidden_size)
    labels = torch.full((2, 6), -100)
    labels[0, 2], labels[1, 4], labels[1, 0] = 5, 9, 11
    emb = backbone.input_embeddings.weight
    full = model.mlm_head(states.flatten(0, 1), emb)
    full_loss = F.cross_entropy(full, labels.flatten(), ignore_index=-100)
    masked = labels != -100
    sparse_loss = F.cross_entropy(model.mlm_head(states[masked], emb), labels[masked])
    assert torch.allclose(full_loss, sparse_loss, atol=1e-6)


def test_base_mlm_head_is_reused_when_present(tmp_path) -> None:
    with_head = load_backbone(str(build_tiny_model(tmp_path / "a", "bert", with_mlm_head=True)))
    without = load_backbone(str(build_tiny_model(tmp_path / "b", "bert", with_mlm_head=False)))
    assert with_head.mlm_head_state is not None
    assert without.mlm_head_state is None
    model = HyperX(with_head, SMALL, registry())
    assert torch.equal(model.mlm_head.transform.weight, with_head.mlm_head_state["transform.weight"])


def test_trainable_groups(tiny_bert) -> None:
    model = HyperX(load_backbone(str(tiny_bert)), SMALL, registry())
    params = model.set_trainable("all")
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("LayerNorm" in n for n in names), "base LayerNorms train by default"
    assert not any("attention.self.query" in n for n in names), "the encoder's other weights stay frozen"
    assert len(params) == len([p for p in model.parameters() if p.requires_grad])
    with model.hypernet.embeddings.language_row(2, torch.zeros(4)):
        only = model.set_trainable("lang")
        assert only == [model.hypernet.embeddings.row]
        assert [n for n, p in model.named_parameters() if p.requires_grad] == ["hypernet.embeddings.row"]


def test_stacked_adapters_apply_in_order(tiny_bert) -> None:
    model = HyperX(load_backbone(str(tiny_bert)), SMALL, registry())
    ids = torch.tensor([[2, 7, 8, 3]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        model.hypernet.generator.linear.weight.normal_(std=0.1)
        first, second = model.adapters("pos", "en"), model.adapters("pos", "tr")
        stacked = model.encode(ids, mask, [first, second])
        reversed_ = model.encode(ids, mask, [second, first])
        single = model.encode(ids, mask, first)
    assert not torch.allclose(stacked, single)
    assert not torch.allclose(stacked, reversed_)
