"""Per-language low-rank encoder updates (`fewshot --tune lang+head+lora`) and model snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY_DATA
from hxtool.workflows.add_language import add_language
from hxtool.config import TrainConfig
from hxtool.data.labelled import read_labelled
from hxtool.errors import HxError
from hxtool.workflows.fewshot import LoraOptions, fewshot
from hxtool.store.session import load_model
from hxtool.tagging import predict_tags


def fewshot_config(steps: int = 10) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=5e-2, max_length=32, decay=False, warmup=0.0, seed=1)


def words(lang: str) -> list[list[str]]:
    return read_labelled("pos", TINY_DATA / f"{lang}-pos-dev.conllu").words


def test_a_fresh_low_rank_update_changes_nothing(checkpoint: Path) -> None:
    model, _ = load_model(checkpoint)
    before = predict_tags(model, "pos", "tr", words("tr"))
    states = model.encode(*_ids(model), model.adapters("pos", "tr"))
    model.own_lora("tr", {"rank": 4, "targets": ["query", "value", "ffn_out", "attn_norm", "ffn_norm"], "alpha": 8.0})
    with model.language_updates("tr"):
        assert torch.equal(model.encode(*_ids(model), model.adapters("pos", "tr")), states)
    assert predict_tags(model, "pos", "tr", words("tr")) == before


def _ids(model) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = model.backbone.tokenizer(["bir iki üç", "dört"], return_tensors="pt", padding=True)
    return encoded["input_ids"], encoded["attention_mask"]


def test_lora_fewshot_changes_only_the_tuned_language(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    dev = read_labelled("pos", TINY_DATA / "tr-pos-dev.conllu")
    en_before = predict_tags(model, "pos", "en", words("en"))
    state_before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    options = LoraOptions(rank=2, targets=("query", "value", "ffn_out", "ffn_norm"), lr=5e-2, layers="1")
    fewshot(model, meta, checkpoint, "pos", "tr", train, dev, 8, fewshot_config(), tune="lang+head+lora",
            quiet=True, lora=options)
    tr_after = predict_tags(model, "pos", "tr", words("tr"))
    reloaded, _ = load_model(checkpoint)
    state_after = reloaded.learned_state_dict()
    changed = [k for k in state_before if not torch.equal(state_before[k], state_after[k])]
    assert changed == ["hypernet.embeddings.language.weight"]
    added = sorted(set(state_after) - set(state_before))
    assert reloaded.backbone.num_layers == 2  # layer 0 gets no updates: --lora-layers 1
    assert added == sorted(["heads.pos@tr.linear.bias", "heads.pos@tr.linear.weight"]
                           + [f"lora.tr.updates.1_{t}.{m}" for t in ("query", "value", "ffn_out") for m in "AB"]
                           + [f"lora.tr.updates.1_ffn_norm.{m}" for m in ("dw", "db")])
    # The updates learned something (B and the norm shifts left zero) and travel with the checkpoint.
    assert any(state_after[k].abs().sum() > 0 for k in added if k.endswith(".B"))
    assert any(state_after[k].abs().sum() > 0 for k in added if k.endswith((".dw", ".db")))
    assert reloaded.registry.language("tr").lora == {"rank": 2, "targets": ["query", "value", "ffn_out", "ffn_norm"],
                                                     "alpha": 16.0, "layers": [1]}
    assert predict_tags(reloaded, "pos", "tr", words("tr")) == tr_after
    assert predict_tags(reloaded, "pos", "en", words("en")) == en_before


def test_lora_options_are_checked(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    for options, message in ((LoraOptions(rank=0), "--lora-rank"), (LoraOptions(targets=("nope",)), "LoRA targets"),
                             (LoraOptions(layers="1-5"), r"some of 0-1 \(this encoder has 2 layers\), got 1,2,3,4,5"),
                             (LoraOptions(layers="lower"), "all, lower-half, or numbers"),
                             (LoraOptions(layers="3-1"), "not a range")):
        with pytest.raises(HxError, match=message):
            fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="lang+head+lora",
                    quiet=True, lora=options)


def test_adding_a_language_anew_drops_its_updates(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="lang+head+lora", quiet=True)
    model, meta = load_model(checkpoint)
    assert "tr" in model.lora
    config = TrainConfig(steps=2, batch_size=4, lr=1e-2, max_length=32, decay=False, warmup=0.0, seed=2)
    add_language(model, meta, "tr", TINY_DATA / "tr-raw.txt", checkpoint, config, overwrite=True, quiet=True)
    reloaded, _ = load_model(checkpoint)
    assert "tr" not in reloaded.lora and reloaded.registry.language("tr").lora is None
    assert not any(k.startswith("lora.") for k in reloaded.learned_state_dict())


@pytest.mark.parametrize("tune", ["lang+head", "lang+head+lora", "all"])
def test_a_snapshot_is_a_copy_and_restores_predictions_exactly(checkpoint: Path, tmp_path: Path, tune: str) -> None:
    """Benchmarks restore a snapshot between few-shot runs: it must not move with the live weights."""
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    snapshot = model.snapshot()
    tr_before = predict_tags(model, "pos", "tr", words("tr"))
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 8, fewshot_config(), tune=tune, quiet=True,
            output=tmp_path / "out")
    assert predict_tags(model, "pos", "tr", words("tr")) != tr_before  # the run did change tr
    changed = [k for k, v in snapshot["state"].items() if not torch.equal(v, model.learned_state_dict()[k])]
    assert changed  # so the snapshot did not follow the live weights
    model.restore(snapshot)
    assert predict_tags(model, "pos", "tr", words("tr")) == tr_before
    assert set(model.learned_state_dict()) == set(snapshot["state"])
    assert all(torch.equal(v, snapshot["state"][k]) for k, v in model.learned_state_dict().items())
    assert model.registry.language("tr").own_heads == [] and "tr" not in model.lora


def test_a_tuned_language_adds_under_a_megabyte_at_e5_size() -> None:
    """multilingual-e5-small's shape (12 layers, hidden 384): row + own head + default updates <= 1 MB."""
    from transformers import BertConfig, BertModel

    from hxtool.model.lora import LanguageLoRA

    encoder = BertModel(BertConfig(vocab_size=16, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                                   intermediate_size=1536))
    lora = LanguageLoRA.from_spec(encoder, "bert", LoraOptions().spec(12))
    # rank 8 on both feed-forward linears (384 <-> 1536) of the lower six layers
    assert sorted(lora.updates) == sorted(f"{i}_{t}" for i in range(6) for t in ("ffn_in", "ffn_out"))
    assert sum(p.numel() for p in lora.parameters()) == 6 * 2 * 8 * (384 + 1536)
    numbers = sum(p.numel() for p in lora.parameters()) + 64 + (384 + 1) * 17  # + row + a 17-label head
    assert numbers * 4 <= 1_000_000, numbers


def test_auto_tune_adds_low_rank_updates_only_from_twenty_sentences(checkpoint: Path, tmp_path: Path) -> None:
    from hxtool.workflows.fewshot import AUTO_LORA_FROM, resolve_tune

    assert [resolve_tune("auto", n) for n in (1, AUTO_LORA_FROM - 1, AUTO_LORA_FROM, 50)] == \
        ["lang+head", "lang+head", "lang+head+lora", "lang+head+lora"]
    assert resolve_tune("lang", 50) == "lang"
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    few = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="auto", quiet=True,
                  output=tmp_path / "few")
    assert few.tune == "lang+head" and "tr" not in model.lora
    assert model.registry.language("tr").fewshot[-1]["tune"] == "lang+head"
    many = fewshot(model, meta, checkpoint, "pos", "tr", train, None, AUTO_LORA_FROM, fewshot_config(2),
                   tune="auto", quiet=True, output=tmp_path / "many")
    assert many.tune == "lang+head+lora" and "tr" in model.lora


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_norm_shifts_act_as_the_language_s_own_layernorm_weights(arch: str) -> None:
    """A language's attn_norm/ffn_norm shift equals running the encoder with LayerNorm weights w + dw and
    biases b + db, for that language only; every LoRA target exists on each architecture."""
    from hxtool.model.backbone import load_backbone
    from hxtool.model.lora import LORA_MODULES, NORM_TARGETS, LanguageLoRA, LoraContext, attach_lora, target_linears

    backbone = load_backbone(f"tiny-random:{arch}")
    encoder, model_type = backbone.encoder.eval(), backbone.model_type
    context = LoraContext()
    attach_lora(encoder, model_type, context)
    every = LanguageLoRA(encoder, model_type, 2, list(LORA_MODULES[model_type]), 4.0)  # fresh: a no-op
    shifts = LanguageLoRA(encoder, model_type, 2, list(NORM_TARGETS), 4.0)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in shifts.parameters():
            param.normal_(0, 0.3)
    ids = backbone.tokenizer(["bir iki üç", "dört beş"], return_tensors="pt", padding=True)
    inputs = {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"]}
    with torch.no_grad():
        plain = encoder(**inputs).last_hidden_state
        with context.use(every):
            assert torch.equal(encoder(**inputs).last_hidden_state, plain)
        with context.use(shifts):
            shifted = encoder(**inputs).last_hidden_state
        assert not torch.allclose(shifted, plain)
        for target in NORM_TARGETS:  # the same shift written into the modules themselves
            for layer, norm in enumerate(target_linears(encoder, model_type, target)):
                norm.weight += shifts.updates[f"{layer}_{target}"].dw
                norm.bias += shifts.updates[f"{layer}_{target}"].db
        assert torch.allclose(encoder(**inputs).last_hidden_state, shifted, atol=1e-5)


def test_a_language_keeps_its_low_rank_options_until_it_is_added_anew(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="lang+head+lora",
            quiet=True, lora=LoraOptions(rank=2, targets=("query",)))
    with pytest.raises(HxError, match="already has its own low-rank updates"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="lang+head+lora",
                quiet=True, lora=LoraOptions(rank=4, targets=("query",)))
    with pytest.raises(HxError, match=r"rank 2 on query in layers 0\); tune them again"):  # other layers
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="lang+head+lora",
                quiet=True, lora=LoraOptions(rank=2, targets=("query",), layers="all"))
    with pytest.raises(HxError, match="LoRA targets"):  # auto checks them even where n picks no updates
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="auto",
                quiet=True, lora=LoraOptions(targets=("nope",)))


def test_the_command_line_defaults_are_the_library_s() -> None:
    """`hxtool fewshot` spells its LoRA defaults out (no torch import for --help): they must be LoraOptions'."""
    import inspect

    from hxtool import cli

    params = inspect.signature(cli.fewshot).parameters
    options = LoraOptions()
    assert params["lora_targets"].default.default == ",".join(options.targets)
    assert params["lora_layers"].default.default == options.layers
    assert params["lora_rank"].default.default == options.rank and params["lora_lr"].default.default == options.lr
