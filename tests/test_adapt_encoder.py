"""add-language --adapt-encoder: the new language's own low-rank encoder updates, learned by anchored MLM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from conftest import TINY_DATA
from hxtool.config import TrainConfig
from hxtool.data.labelled import read_labelled
from hxtool.errors import HxError
from hxtool.store.session import load_model
from hxtool.tagging import predict_tags
from hxtool.workflows.add_language import EncoderAdaptation, add_language
from hxtool.workflows.fewshot import fewshot


def mlm_config(steps: int = 4) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=1e-1, max_length=32, decay=False, warmup=0.0, seed=2)


def words(lang: str) -> list[list[str]]:
    return read_labelled("pos", TINY_DATA / f"{lang}-pos-dev.conllu").words


def adapted(checkpoint: Path, output: Path, anchor: float = 1.0, steps: int = 6, lr: float = 5e-2, **kwargs):
    model, meta = load_model(checkpoint)
    adapt = EncoderAdaptation(steps=steps, anchor=anchor)
    adapt.lora.lr = lr
    report = add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", output, mlm_config(), quiet=True,
                          adapt=adapt, **kwargs)
    return model, report


def test_adapting_the_encoder_adds_only_the_new_language_s_updates(checkpoint: Path, tmp_path: Path) -> None:
    model, _ = load_model(checkpoint)
    before = {lang: predict_tags(model, "pos", lang, words(lang)) for lang in ("en", "tr")}
    state_before = {k: v.clone() for k, v in model.learned_state_dict().items()}

    _, report = adapted(checkpoint, tmp_path / "out")
    assert report.adapted is not None and report.adapted.steps == 6
    reloaded, meta = load_model(tmp_path / "out")
    state = reloaded.learned_state_dict()
    for key, value in state_before.items():
        if key == "hypernet.embeddings.language.weight":
            assert torch.equal(state[key][:-1], value)  # the known rows; fo's row is appended
        else:
            assert torch.equal(state[key], value), key
    added = sorted(set(state) - set(state_before))
    assert added and all(k.startswith("lora.fo.updates.") for k in added)
    assert any(k.endswith(".B") and state[k].abs().sum() > 0 for k in added)  # the updates moved
    # fewshot's default shape (so few-shot goes on tuning them): the feed-forward linears of the lower half
    assert reloaded.registry.language("fo").lora == {"rank": 8, "targets": ["ffn_in", "ffn_out"], "alpha": 16.0,
                                                     "layers": [0]}
    assert meta.history[-1]["adapt_encoder"]["steps"] == 6
    for lang, tags in before.items():
        assert predict_tags(reloaded, "pos", lang, words(lang)) == tags  # bit-identical for every other language

    plain, _ = load_model(checkpoint)
    add_language(plain, load_model(checkpoint)[1], "fo", TINY_DATA / "fo-raw.txt", tmp_path / "plain", mlm_config(),
                 quiet=True)
    plain, _ = load_model(tmp_path / "plain")
    assert torch.equal(plain.hypernet.embeddings.language.weight, reloaded.hypernet.embeddings.language.weight)
    assert "fo" not in plain.lora  # without --adapt-encoder nothing but the row


def _tagger_drift(model, lang: str) -> float:
    """KL between the POS head's token distributions without and with `lang`'s updates, on its test words."""
    batch = model.backbone.tokenizer([" ".join(w) for w in words("en")], return_tensors="pt", padding=True)
    adapters = model.adapters("pos", lang)
    mask = batch["attention_mask"].bool()
    with torch.no_grad():
        before = F.log_softmax(model.head("pos")(model.encode(batch["input_ids"], batch["attention_mask"], adapters))[mask], -1)
        with model.language_updates(lang):
            after = F.log_softmax(model.head("pos")(model.encode(batch["input_ids"], batch["attention_mask"],
                                                                  adapters))[mask], -1)
    return F.kl_div(after, before, log_target=True, reduction="batchmean").item()


def test_the_anchor_keeps_what_the_tagger_reads(checkpoint: Path, tmp_path: Path) -> None:
    # (at 1e-1 the feed-forward updates of the default shape blow past any anchor on this tiny model: free
    # and anchored drift alike; at 1e-2 plain MLM still moves the tagger, the anchor holds it)
    free, _ = adapted(checkpoint, tmp_path / "free", anchor=0.0, steps=12, lr=1e-2)
    anchored, _ = adapted(checkpoint, tmp_path / "anchored", anchor=50.0, steps=12, lr=1e-2)
    assert 0 < _tagger_drift(anchored, "fo") < 0.5 * _tagger_drift(free, "fo")


def _fewshot(folder: Path, tune: str = "lang+head+lora", **kwargs):
    train = read_labelled("pos", TINY_DATA / "fo-pos-train.conllu")
    config = TrainConfig(steps=4, batch_size=4, lr=5e-2, max_length=32, decay=False, warmup=0.0, seed=1)
    model, meta = load_model(folder)
    fewshot(model, meta, folder, "pos", "fo", train, None, 8, config, tune=tune, quiet=True, **kwargs)
    return load_model(folder)[0]


@pytest.mark.parametrize("tune", ["lang+head+lora", "lang+head"])
def test_fewshot_starts_anew_from_add_language_s_updates(checkpoint: Path, tmp_path: Path, tune: str) -> None:
    """add-language's updates serve zero-shot; few-shot drops them and tunes exactly as after a plain
    add-language (same row): bit-identical weights and predictions."""
    adapted(checkpoint, tmp_path / "adapted")
    plain, meta = load_model(checkpoint)
    add_language(plain, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "plain", mlm_config(), quiet=True)
    after_adapted, after_plain = _fewshot(tmp_path / "adapted", tune), _fewshot(tmp_path / "plain", tune)
    state, expected = after_adapted.learned_state_dict(), after_plain.learned_state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    assert ("fo" in after_adapted.lora) == (tune == "lang+head+lora")
    test = read_labelled("pos", TINY_DATA / "fo-pos-test.conllu").words
    assert predict_tags(after_adapted, "pos", "fo", test) == predict_tags(after_plain, "pos", "fo", test)


def test_fewshot_can_keep_add_language_s_updates_and_tunes_its_own_further(checkpoint: Path, tmp_path: Path) -> None:
    model, _ = adapted(checkpoint, checkpoint)
    start = {k: v.clone() for k, v in model.lora["fo"].state_dict().items()}
    tuned = _fewshot(checkpoint, keep_encoder_updates=True).lora["fo"].state_dict()
    assert tuned.keys() == start.keys() and any(not torch.equal(tuned[k], start[k]) for k in start)
    # a second few-shot finds updates a few-shot tuned: they stay (lang+head leaves them as they are)
    again = _fewshot(checkpoint, tune="lang+head").lora["fo"].state_dict()
    assert all(torch.equal(again[k], tuned[k]) for k in tuned)


@pytest.mark.parametrize("every, die_at", [(3, 3), (5, 5)])  # 5: the 4-step row stage never saves
def test_an_interrupted_adapt_stage_resumes_to_the_same_weights(checkpoint: Path, tmp_path: Path, every: int,
                                                               die_at: int) -> None:
    from test_safety import interrupted_after_saving, same_weights

    adapted(checkpoint, tmp_path / "straight", steps=6)
    saves: list = []
    with interrupted_after_saving(die_at, "resumed.adapt-encoder.resume", saves):  # die in the adapt stage
        adapted(checkpoint, tmp_path / "resumed", steps=6, save_every=every)
    assert saves[0] == (("resumed.resume", 3) if every == 3 else ("resumed.adapt-encoder.resume", 5))
    adapted(checkpoint, tmp_path / "resumed", steps=6, save_every=every, resume=True)
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    assert not list(tmp_path.glob("*.resume"))


def test_adapt_options_are_checked(checkpoint: Path, tmp_path: Path) -> None:
    for adapt, message in ((EncoderAdaptation(steps=0), "--adapt-steps"), (EncoderAdaptation(anchor=-1), "--anchor")):
        model, meta = load_model(checkpoint)
        with pytest.raises(HxError, match=message):
            add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "out", mlm_config(), quiet=True,
                         adapt=adapt)
        assert not (tmp_path / "out").exists()


def test_the_anchored_terms_backpropagated_in_turn_train_as_their_sum(checkpoint: Path, tmp_path: Path,
                                                                      monkeypatch) -> None:
    """The stage's two encoder passes reach the loop as parts, each backpropagated (and freed) before the next
    is built: the weights are bit-identical to one graph of their sum, and the logged losses equal."""
    import hxtool.workflows.add_language as add_language_module
    from hxtool.training.loop import LossParts

    staged, staged_report = adapted(checkpoint, tmp_path / "staged")
    one_graph = add_language_module.anchored_mlm_loss

    def summed(*args, **kwargs):
        loss = one_graph(*args, **kwargs)

        def whole(pair, batch):
            parts = loss(pair, batch)
            assert isinstance(parts, LossParts) and len(parts.terms) == 2
            return parts.summed()
        return whole

    monkeypatch.setattr(add_language_module, "anchored_mlm_loss", summed)
    together, together_report = adapted(checkpoint, tmp_path / "together")
    assert staged_report.adapted.losses == together_report.adapted.losses
    for name, param in staged.lora["fo"].state_dict().items():
        assert torch.equal(param, together.lora["fo"].state_dict()[name]), name
    assert any(k.endswith(".B") and v.abs().sum() > 0 for k, v in staged.lora["fo"].state_dict().items())


UNSEGMENTED = ["我们试试看。", "今天是六月十八号，也是她的生日！", "这是什么啊？", "密码是什么？", "我该去睡觉了。"]


@pytest.mark.parametrize(("lines", "expected"), [
    (UNSEGMENTED, True),
    ([" ".join(line) for line in UNSEGMENTED], False),  # the same text with its "words" separated
    (["きょうはいいてんきですね。", "カタカナもひらがなもある。"], True),
    (["오늘은 날씨가 좋네요.", "한국어는 띄어쓰기를 합니다."], False),  # Hangul is written with spaces
    (["Ürümqi is a city", "Maltese is written in Latin letters"], False),
    (["English mostly, with one 中文词语 inside", "and more English text here"], False),
])
def test_a_corpus_in_a_script_without_spaces_is_told_apart(tmp_path: Path, lines: list[str],
                                                            expected: bool) -> None:
    from hxtool.data.corpus import unsegmented_script

    corpus = tmp_path / "raw.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert unsegmented_script(corpus) is expected


def test_add_language_warns_before_adapting_the_encoder_on_unsegmented_text(checkpoint: Path,
                                                                             tmp_path: Path) -> None:
    """The warning comes with --adapt-encoder only (the row alone was not hurt by such text) and does not stop it."""
    from typer.testing import CliRunner

    from hxtool.cli import app

    corpus = tmp_path / "zh.txt"
    corpus.write_text("\n".join(UNSEGMENTED * 4) + "\n", encoding="utf-8")
    base = ["add-language", "--code", "zh", "--corpus", str(corpus), "-c", str(checkpoint), "--steps", "1",
            "--batch-size", "4", "--max-length", "32", "--quiet"]
    runner = CliRunner()
    adapted = runner.invoke(app, [*base, "--adapt-encoder", "--adapt-steps", "1", "--output", str(tmp_path / "a")])
    assert adapted.exit_code == 0, adapted.output
    assert "written without spaces" in adapted.stderr and "added zh" in adapted.stdout
    row_only = runner.invoke(app, [*base, "--output", str(tmp_path / "b")])
    assert row_only.exit_code == 0 and "written without spaces" not in row_only.output
    segmented = tmp_path / "zh_segmented.txt"
    segmented.write_text("\n".join(" ".join(line) for line in UNSEGMENTED * 4) + "\n", encoding="utf-8")
    base[4] = str(segmented)
    adapted = runner.invoke(app, [*base, "--adapt-encoder", "--adapt-steps", "1", "--output", str(tmp_path / "c")])
    assert adapted.exit_code == 0 and "written without spaces" not in adapted.output
