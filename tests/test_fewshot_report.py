"""benchmarks/fewshot_curves.py --report: merging per-system result files into one table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conftest import TINY_DATA, benchmark_module, tiny_data_dir


@pytest.fixture(scope="module")
def curves():
    yield from benchmark_module("fewshot_curves")


def write_run(curves, path: Path, system: str, scores: list[tuple[int, int, float]], seconds: float,
              profile=None, tune: str | None = None) -> Path:
    """A result file; `tune`: the mode its n > 0 cells record having run (as the suite writes it)."""
    profile = profile or curves.PROFILES["quick"]
    run = curves.Run(profile=dataclasses.asdict(profile), meta={"seconds": {system: seconds, "total": seconds}})
    for n, seed, upos in scores:
        run.scores.append({"system": system, "target": "ug", "n": n, "seed": seed, "upos": upos,
                           **({"tune": tune} if tune and n > 0 else {})})
    run.stages.append({"system": system, "stage": "fewshot ug n=20 seed=1", "steps": 10, "seconds": 5.0,
                       "trainable": 7})
    run.cost[system] = {"bytes_zero_shot": 328, "bytes_tuned": 26_700}
    path.write_text(json.dumps(dataclasses.asdict(run)))
    return path


def test_report_merges_runs_of_one_profile(curves, tmp_path, capsys):
    a = write_run(curves, tmp_path / "a.json", "hxtool", [(0, 0, 70.0), (20, 1, 74.0), (20, 2, 76.0)], 100.0)
    b = write_run(curves, tmp_path / "b.json", "full_ft", [(0, 0, 65.0), (20, 1, 80.0), (20, 2, 78.0)], 50.0)
    merged_path = tmp_path / "merged.json"
    assert curves.report([a, b], merged_path) == 0
    merged = json.loads(merged_path.read_text())
    assert {row["system"] for row in merged["scores"]} == {"hxtool", "full_ft"}
    assert len(merged["scores"]) == 6 and len(merged["stages"]) == 2
    assert set(merged["cost"]) == {"hxtool", "full_ft"}
    assert merged["meta"]["seconds"] == {"hxtool": 100.0, "full_ft": 50.0, "total": 150.0}
    assert merged["meta"]["merged_from"] == [str(a), str(b)]
    printed = capsys.readouterr().out
    assert "| ug | hxtool | 70.00 | 75.00 ± 1.41 |" in printed  # mean and sample std of 74 and 76
    assert "| ug | full_ft | 65.00 | 79.00 ± 1.41 |" in printed


def test_report_refuses_runs_of_different_profiles(curves, tmp_path):
    a = write_run(curves, tmp_path / "a.json", "hxtool", [(0, 0, 70.0)], 1.0)
    other = dataclasses.replace(curves.PROFILES["quick"], lang_steps=99)
    b = write_run(curves, tmp_path / "b.json", "madx", [(0, 0, 20.0)], 1.0, profile=other)
    with pytest.raises(SystemExit, match="different profiles"):
        curves.report([a, b], tmp_path / "merged.json")
    assert not (tmp_path / "merged.json").exists()


def test_report_merges_baselines_that_predate_the_tuning_options(curves, tmp_path):
    """A baseline's file without hxtool's tuning fields (or with others) merges; two hxtool files with
    different tuning options do not."""
    hx = write_run(curves, tmp_path / "hx.json", "hxtool", [(0, 0, 70.0)], 1.0)
    old = json.loads(write_run(curves, tmp_path / "ft.json", "full_ft", [(0, 0, 72.0)], 1.0).read_text())
    for key in curves.HXTOOL_ONLY:
        del old["profile"][key]
    (tmp_path / "ft.json").write_text(json.dumps(old))
    rank4 = dataclasses.replace(curves.PROFILES["quick"], lora_rank=4)
    madx = write_run(curves, tmp_path / "madx.json", "madx", [(0, 0, 20.0)], 1.0, profile=rank4)
    assert curves.report([tmp_path / "ft.json", hx, madx], tmp_path / "merged.json") == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["profile"]["tune_modes"] == list(curves.PROFILES["quick"].tune_modes)  # hxtool's profile kept
    assert {r["system"] for r in merged["scores"]} == {"hxtool", "full_ft", "madx"}
    other = dataclasses.replace(curves.PROFILES["quick"], pretrain_lr=3e-4)
    hx3 = write_run(curves, tmp_path / "hx3.json", "hxtool", [(20, 1, 71.0)], 1.0, profile=other)
    with pytest.raises(SystemExit, match="score hxtool with different tuning options"):
        curves.report([hx, hx3], None)


def test_report_checks_the_updates_options_only_where_cells_tuned_updates(curves, tmp_path):
    """`auto` below 20 sentences tunes row + head: such cells merge with cells of the same system whose low-rank
    updates had other options; two files whose cells both tuned updates with different options do not merge."""
    qv = dataclasses.replace(curves.PROFILES["quick"], lora_targets=("query", "value"))
    small = write_run(curves, tmp_path / "small.json", "hxtool", [(0, 0, 70.0), (5, 1, 75.0)], 1.0, profile=qv,
                      tune="lang+head")
    large = write_run(curves, tmp_path / "large.json", "hxtool", [(20, 1, 80.0)], 1.0, tune="lang+head+lora")
    for order in ([small, large], [large, small]):
        assert curves.report(order, tmp_path / "merged.json") == 0
    qv_large = write_run(curves, tmp_path / "qv_large.json", "hxtool", [(50, 1, 81.0)], 1.0, profile=qv,
                         tune="lang+head+lora")
    for order in ([large, qv_large], [small, large, qv_large], [qv_large, small, large]):
        with pytest.raises(SystemExit, match="different tuning options"):
            curves.report(order, None)


def test_report_merges_systems_of_different_options_and_says_which(curves, tmp_path, capsys):
    """One system's cells come from one set of options; another system (say a tuning mode measured before
    add-language's default changed) may have its own, and the merged file lists them."""
    adapted = dataclasses.replace(curves.PROFILES["quick"], adapt_encoder=True)
    row_only = dataclasses.replace(curves.PROFILES["quick"], adapt_encoder=False)
    new = write_run(curves, tmp_path / "new.json", "hxtool", [(0, 0, 75.0)], 1.0, profile=adapted)
    old = write_run(curves, tmp_path / "old.json", "hxtool_lang_head", [(0, 0, 74.0)], 1.0, profile=row_only)
    assert curves.report([new, old], tmp_path / "merged.json") == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["profile"]["adapt_encoder"] is True  # the first hxtool file's profile
    assert merged["meta"]["options_by_system"] == {"hxtool_lang_head": {"adapt_encoder": False}}
    assert "hxtool_lang_head ran with its own options: adapt_encoder=False" in capsys.readouterr().out
    old_hxtool = write_run(curves, tmp_path / "old_hxtool.json", "hxtool", [(0, 0, 74.0)], 1.0, profile=row_only)
    with pytest.raises(SystemExit, match="score hxtool with different tuning options"):
        curves.report([new, old_hxtool], None)


def test_report_takes_chosen_systems_of_a_file_and_refuses_a_cell_twice(curves, tmp_path):
    """An earlier hxtool run's extra tuning modes merge beside a newer run of the default (same options but
    the modes); the same (system, target, n, seed) from two files is refused."""
    new = write_run(curves, tmp_path / "new.json", "hxtool", [(0, 0, 70.0), (20, 1, 80.0)], 1.0)
    modes = dataclasses.replace(curves.PROFILES["quick"], tune_modes=("auto", "lang+head"))
    old = json.loads(write_run(curves, tmp_path / "old.json", "hxtool", [(0, 0, 70.0), (20, 1, 78.0)], 9.0,
                               profile=modes).read_text())
    old["scores"].append({"system": "hxtool_lang_head", "target": "ug", "n": 20, "seed": 1, "upos": 77.0,
                          "same_run_as": "hxtool"})  # that hxtool is the old file's, left out below
    old["cost"]["hxtool_lang_head"] = {"bytes_tuned": 1}
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="more than one file scores hxtool"):
        curves.report([new, tmp_path / "old.json"], None)
    with pytest.raises(SystemExit, match="no scores of madx"):
        curves.report([new, f"{tmp_path / 'old.json'}:madx"], None)
    merged_path = tmp_path / "merged.json"
    assert curves.report([new, f"{tmp_path / 'old.json'}:hxtool_lang_head"], merged_path) == 0
    merged = json.loads(merged_path.read_text())
    assert sorted((r["system"], r["upos"]) for r in merged["scores"]) == \
        [("hxtool", 70.0), ("hxtool", 80.0), ("hxtool_lang_head", 77.0)]
    assert set(merged["cost"]) == {"hxtool", "hxtool_lang_head"} and merged["stages"][0]["system"] == "hxtool"
    assert not any("same_run_as" in r for r in merged["scores"])
    assert merged["profile"]["tune_modes"] == list(curves.PROFILES["quick"].tune_modes)


def test_tuning_modes_are_systems_and_the_mean_row_is_a_diagnostic(curves, tmp_path, capsys):
    lora = write_run(curves, tmp_path / "a.json", "hxtool_lang_head_lora", [(0, 0, 70.0), (20, 1, 78.0)], 1.0)
    mean = write_run(curves, tmp_path / "b.json", "hxtool_meanrow", [(0, 0, 69.0)], 1.0)
    plain = write_run(curves, tmp_path / "c.json", "hxtool", [(0, 0, 70.0), (20, 1, 75.0)], 1.0)
    curves.report([lora, mean, plain], None)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ug |")]
    assert rows == ["| ug | hxtool | 70.00 | 75.00 |", "| ug | hxtool_lang_head_lora | 70.00 | 78.00 |",
                    "| ug | hxtool_meanrow | 69.00 | – |"]
    from hxtool.workflows.fewshot import DEFAULT_TUNE

    assert curves.hxtool_system(DEFAULT_TUNE) == "hxtool"
    other = "lang+head+lora" if DEFAULT_TUNE != "lang+head+lora" else "lang+head"
    assert curves.hxtool_system(other) == "hxtool_" + other.replace("+", "_")


def test_mean_row_scoring_puts_the_learned_row_back(curves, checkpoint):
    import torch

    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    model, _ = load_model(checkpoint)
    words = [["the", "dog", "runs"], ["a", "cat"]]
    table = model.hypernet.embeddings.language.weight
    before = table.detach().clone()
    learned = predict_tags(model, "pos", "tr", words)
    # The "mean" of en's row alone is en's row: tr then tags exactly as en does (same adapters, shared head).
    assert curves.mean_row_predictions(model, "tr", ("en",), words) == predict_tags(model, "pos", "en", words)
    assert torch.equal(table, before) and predict_tags(model, "pos", "tr", words) == learned


def test_the_mean_row_leaves_out_the_target_s_own_encoder_updates(curves, checkpoint):
    import torch

    from hxtool.model.lora import LoraOptions
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    model, _ = load_model(checkpoint)
    words = [["the", "dog", "runs"], ["a", "cat"]]
    bare = curves.mean_row_predictions(model, "tr", ("en",), words)
    without = predict_tags(model, "pos", "tr", words)
    lora = model.own_lora("tr", LoraOptions(rank=2).spec(model.backbone.num_layers))
    with torch.no_grad():
        for update in lora.updates.values():
            update.B.normal_(0, 5.0)  # updates large enough to change tr's tags
    with_updates = predict_tags(model, "pos", "tr", words)
    assert with_updates != without
    assert curves.mean_row_predictions(model, "tr", ("en",), words) == bare
    assert model.lora["tr"] is lora and predict_tags(model, "pos", "tr", words) == with_updates


SUITE_LAYOUT = {"ud/en_ewt/train.conllu": "en-pos-train.conllu", "ud/tr_imst/train.conllu": "tr-pos-train.conllu",
                "ud/ug_udt/train.conllu": "fo-pos-train.conllu", "ud/ug_udt/test.conllu": "fo-pos-test.conllu",
                "raw/en.txt": "en-raw.txt", "raw/tr.txt": "tr-raw.txt", "raw/ug.txt": "fo-raw.txt"}


def test_auto_is_scored_from_the_runs_of_the_modes_it_picks(curves, tmp_path):
    """`auto` at n < 20 is lang+head and at n >= 20 lang+head+lora plus self-training: the suite runs each
    recipe once and records the copy under every system that asks for it; variants carry their own options
    (`st=0`: no self-training)."""
    import torch

    data = tiny_data_dir(tmp_path / "data", SUITE_LAYOUT)
    out = tmp_path / "run.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert curves.main(["--quick", "--systems", "hxtool", "--data-dir", str(data), "--base-model",
                            "tiny-random:xlm-roberta", "--source-steps", "4", "--lang-steps", "2", "--epochs", "1",
                            "--shots", "0,5,20", "--eval-limit", "8", "--output", str(out), "--tune-modes",
                            "auto,lang+head,lang+head+lora,auto/st=0,lang+head+lora/r=2/t=value:ffn_norm/l=1,"
                            "auto/keep=1/uw=0.5"]) == 0
    finally:
        torch.set_num_threads(threads)
    run = json.loads(out.read_text())
    rows = {(r["system"], r["n"]): r for r in run["scores"] if r["n"] > 0}
    assert rows[("hxtool_lang_head", 5)]["same_run_as"] == "hxtool"
    assert rows[("hxtool_auto/st=0", 5)]["same_run_as"] == "hxtool"
    assert rows[("hxtool_auto/st=0", 20)]["same_run_as"] == "hxtool_lang_head_lora"
    assert rows[("hxtool_auto/keep=1/uw=0.5", 5)]["same_run_as"] == "hxtool"  # no second round below 20
    for n in (5, 20):
        assert "same_run_as" not in rows[("hxtool", n)]
        assert "same_run_as" not in rows[("hxtool_lang_head_lora/r=2/t=value:ffn_norm/l=1", n)]
    for system in ("hxtool_lang_head", "hxtool_lang_head_lora"):  # auto self-trains at 20: a run of its own
        assert "same_run_as" not in rows[(system, 20)]
    assert "same_run_as" not in rows[("hxtool_lang_head_lora", 5)]
    assert rows[("hxtool", 5)]["tune"] == "lang+head" and rows[("hxtool", 20)]["tune"] == "lang+head+lora"
    # One few-shot stage per distinct run: 2 (auto) + 1 (lang+head at 20) + 2 (lora) + 2 (the variant)
    # + 1 (auto's second round with other options, at 20).
    stages = [s for s in run["stages"] if s["stage"].startswith("fewshot")]
    assert len(stages) == 8
    self_trained = {s["system"]: s["self_training"] for s in stages if "self_training" in s}
    assert self_trained.keys() == {"hxtool", "hxtool_auto/keep=1/uw=0.5"}
    assert self_trained["hxtool"]["kept"] > 0 and "unsure_words" not in self_trained["hxtool"]
    words = self_trained["hxtool_auto/keep=1/uw=0.5"]
    assert words["unsure_words"] == 0.5 and words["kept"] > self_trained["hxtool"]["kept"]
    # The variant's own options reached fewshot: row + head, rank-2 value updates and ffn_norm shifts in layer 1
    # alone; the default: rank-8 updates of both feed-forward linears in the lower half (layer 0 of 2).
    from hxtool.model.backbone import load_backbone

    backbone = load_backbone("tiny-random:xlm-roberta")
    hidden, inner = backbone.hidden_size, backbone.encoder.config.intermediate_size
    assert backbone.num_layers == 2
    trainable = {s["system"]: s["trainable"] for s in stages}
    variant = trainable["hxtool_lang_head_lora/r=2/t=value:ffn_norm/l=1"]
    assert variant == trainable["hxtool_lang_head"] + 2 * (hidden + hidden) + 2 * hidden
    default = [s["trainable"] for s in stages if s["system"] == "hxtool" and " n=20 " in s["stage"]]
    assert default == [trainable["hxtool_lang_head"] + 8 * 2 * (hidden + inner)]
    assert run["cost"]["hxtool"]["bytes_tuned"] > run["cost"]["hxtool_lang_head"]["bytes_tuned"]


def test_balanced_pretraining_gives_pos_the_share_of_s_steps(curves, tmp_path):
    from hxtool.data.corpus import corpus_info
    from hxtool.data.labelled import read_labelled
    from hxtool.training.sampler import temperature_probabilities

    tiny_data_dir(tmp_path, SUITE_LAYOUT)
    profile = dataclasses.replace(curves.PROFILES["quick"], source_steps=500, lang_steps=100, balanced=True)
    recipe = curves.hxtool_recipe(profile, tmp_path)
    weights = [src.weight for src in recipe.data] + [src.weight for src in recipe.mlm]
    assert weights[:2] == [weights[0]] * 2 and weights[2:] == [1.0, 1.0] and weights[0] != 1.0
    sizes = [len(read_labelled("pos", src.train)) for src in recipe.data] + \
        [corpus_info(src.corpus).lines for src in recipe.mlm]
    probabilities = temperature_probabilities(sizes, recipe.train.temperature, weights)
    assert probabilities[:2].sum() == pytest.approx(500 / 700)
    assert all(src.weight == 1.0 for src in curves.hxtool_recipe(curves.PROFILES["quick"], tmp_path).data)


def test_mlm_recipe_adds_mlm_only_languages_and_keeps_the_pos_share(curves, tmp_path):
    import shutil

    from hxtool.data.corpus import corpus_info
    from hxtool.data.labelled import read_labelled
    from hxtool.training.sampler import temperature_probabilities

    tiny_data_dir(tmp_path, SUITE_LAYOUT)
    for lang in ("it", "az"):
        shutil.copy(TINY_DATA / SUITE_LAYOUT["raw/en.txt"], tmp_path / "raw" / f"{lang}.txt")
    many = tmp_path / "many.toml"  # en (a source) and ug (a target) are left out of the extra languages
    many.write_text("".join(f'[[mlm]]\nlang = "{lang}"\ncorpus = "raw/{lang}.txt"\n\n'
                            for lang in ("en", "it", "az", "ug")))

    def probabilities(recipe):
        sizes = [len(read_labelled("pos", src.train)) for src in recipe.data] + \
            [corpus_info(src.corpus).lines for src in recipe.mlm]
        weights = [src.weight for src in recipe.data] + [src.weight for src in recipe.mlm]
        return temperature_probabilities(sizes, recipe.train.temperature, weights)

    plain = curves.hxtool_recipe(curves.PROFILES["quick"], tmp_path)
    profile = dataclasses.replace(curves.PROFILES["quick"], mlm_recipe=str(many))
    recipe = curves.hxtool_recipe(profile, tmp_path)
    assert [src.lang for src in recipe.mlm] == ["en", "tr", "it", "az"]
    assert recipe.train.steps == plain.train.steps
    assert probabilities(recipe)[:2].sum() == pytest.approx(probabilities(plain)[:2].sum())
    assert recipe.data[0].weight > 1.0  # without the reweighting four MLM pairs would crowd POS out


def test_the_mean_row_is_over_the_pretraining_languages_only(checkpoint):
    from hxtool.store.session import load_model

    model, _ = load_model(checkpoint)
    codes = model.registry.language_codes()
    assert model.registry.pretrained_languages() == codes
    model.registry.language(codes[-1]).source = "add-language"  # as a target the suite added
    assert model.registry.pretrained_languages() == codes[:-1]


def test_a_variant_with_impossible_self_training_options_fails_before_any_work(curves):
    profile = curves.PROFILES["quick"]
    assert curves.parse_variant("auto/keep=1/uw=0.2", profile).second_round == (("keep", 1.0), ("unsure_words", 0.2))
    for spec in ("auto/uw=1", "auto/keep=0", "auto/words=2"):
        with pytest.raises(SystemExit, match="unsure_words|keep|unknown key"):
            curves.parse_variant(spec, profile)


def test_a_variant_with_a_value_that_is_not_a_number_says_which(curves):
    profile = curves.PROFILES["quick"]
    for spec, key in (("auto/lr=fast", "lr"), ("auto/tlr=3e-4x", "tlr"), ("auto/xt=3e-4:slow", "xt"),
                      ("auto/r=8.5", "r"), ("auto/ep=many", "ep"), ("auto/keep=half", "keep")):
        with pytest.raises(SystemExit, match=f": {key} is a "):
            curves.parse_variant(spec, profile)


def test_a_variant_may_name_the_teacher_rate(curves):
    from hxtool.model.lora import LoraOptions

    profile = curves.PROFILES["quick"]
    one_rate = curves.parse_variant("auto", profile).lora
    assert one_rate.teacher_lr is None and "teacher_lr" not in one_rate.record()  # old runs' signatures hold
    taught = curves.parse_variant("auto/tlr=3e-4", profile).lora
    assert taught.teacher_lr == 3e-4 and taught.record()["teacher_lr"] == 3e-4 and taught.lr == one_rate.lr
    assert one_rate.extra_teacher_lrs == LoraOptions.extra_teacher_lrs != ()  # fewshot's default
    assert "extra_teacher_lrs" not in curves.parse_variant("auto/xt=none", profile).lora.record()
    assert curves.parse_variant("auto/xt=3e-4:5e-4", profile).lora.extra_teacher_lrs == (3e-4, 5e-4)


def test_report_completes_a_stopped_run_with_a_run_of_its_missing_seed(curves, tmp_path, capsys):
    stopped = write_run(curves, tmp_path / "stopped.json", "hxtool", [(20, 1, 74.0), (20, 2, 76.0)], 9.0,
                        profile=dataclasses.replace(curves.PROFILES["quick"], seeds=(1, 2, 3)))
    last = write_run(curves, tmp_path / "last.json", "hxtool", [(20, 3, 78.0)], 4.0,
                     profile=dataclasses.replace(curves.PROFILES["quick"], seeds=(3,)))
    merged_path = tmp_path / "merged.json"
    assert curves.report([stopped, last], merged_path) == 0
    merged = json.loads(merged_path.read_text())
    assert merged["profile"]["seeds"] == [1, 2, 3]
    assert "| ug | hxtool | 76.00 ± 2.00 |" in capsys.readouterr().out
    again = write_run(curves, tmp_path / "again.json", "hxtool", [(20, 2, 77.0)], 4.0,
                      profile=dataclasses.replace(curves.PROFILES["quick"], seeds=(2,)))
    with pytest.raises(SystemExit, match="more than one file scores hxtool"):
        curves.report([stopped, again], tmp_path / "refused.json")


def test_report_merges_runs_of_different_targets_and_takes_chosen_targets(curves, tmp_path):
    """A re-run of some targets replaces an older run's: FILE@target,... keeps the others' cells and stages."""
    both = dataclasses.replace(curves.PROFILES["quick"], targets=("mt", "ug"))
    old = json.loads(write_run(curves, tmp_path / "old.json", "hxtool", [(0, 0, 70.0), (20, 1, 80.0)], 9.0,
                               profile=both).read_text())
    old["scores"] += [{**row, "target": "mt", "upos": row["upos"] - 5} for row in old["scores"]]
    old["stages"] += [{**old["stages"][0], "stage": "fewshot mt n=20 seed=1"},
                      {**old["stages"][0], "stage": "pretrain-mlm"}]
    (tmp_path / "old.json").write_text(json.dumps(old))
    new = write_run(curves, tmp_path / "new.json", "hxtool", [(0, 0, 71.0), (20, 1, 82.0)], 1.0)  # ug alone
    with pytest.raises(SystemExit, match="more than one file scores hxtool"):
        curves.report([tmp_path / "old.json", new], None)
    with pytest.raises(SystemExit, match="no target fo"):
        curves.report([f"{tmp_path / 'old.json'}@fo", new], None)
    merged_path = tmp_path / "merged.json"
    assert curves.report([f"{tmp_path / 'old.json'}:hxtool@mt", new], merged_path) == 0
    merged = json.loads(merged_path.read_text())
    assert merged["profile"]["targets"] == ["mt", "ug"]
    assert sorted((r["target"], r["upos"]) for r in merged["scores"]) == \
        [("mt", 65.0), ("mt", 75.0), ("ug", 71.0), ("ug", 82.0)]
    assert [r["stage"] for r in merged["stages"]] == \
        ["fewshot mt n=20 seed=1", "pretrain-mlm", "fewshot ug n=20 seed=1"]
    # Each file pretrained once: the cost table counts the pretraining's parameters once, not once a file.
    merged_run = curves.Run(**{k: merged[k] for k in ("profile", "meta", "scores", "stages", "cost")})
    merged_run.stages[1]["trainable"] = 1000
    merged_run.stages.append({**merged_run.stages[1]})  # the other file's pretraining
    assert "| hxtool | 1,000 | 7 |" in curves.cost_table(merged_run)
    other = dataclasses.replace(curves.PROFILES["quick"], lang_steps=99, targets=("mt",))
    with pytest.raises(SystemExit, match="different profiles"):  # other targets, but other steps too
        curves.report([new, write_run(curves, tmp_path / "o.json", "madx", [(0, 0, 1.0)], 1.0, profile=other)], None)


def test_report_renames_a_variant_and_takes_chosen_shots(curves, tmp_path):
    """A variant run whose recipe became the default joins an earlier run's cells under the default's name:
    FILE:variant>hxtool#20 renames it and keeps n = 20 only; the earlier file keeps the other n."""
    variant = "hxtool_auto/r=8/t=ffn_in:ffn_out/l=0-5"
    new = json.loads(write_run(curves, tmp_path / "new.json", variant, [(0, 0, 70.0), (20, 1, 84.0)], 1.0).read_text())
    new["stages"].append({**new["stages"][0], "stage": "pretrain-mlm"})
    (tmp_path / "new.json").write_text(json.dumps(new))
    five = dataclasses.replace(curves.PROFILES["quick"], shots=(0, 5, 20))
    old = write_run(curves, tmp_path / "old.json", "hxtool", [(0, 0, 70.0), (5, 1, 77.0), (20, 1, 82.0)], 9.0,
                    profile=five)
    with pytest.raises(SystemExit, match="more than one file scores hxtool"):  # n = 20 from both
        curves.report([old, f"{tmp_path / 'new.json'}:{variant}>hxtool#20"], None)
    with pytest.raises(SystemExit, match="no runs at n = 50"):
        curves.report([f"{tmp_path / 'new.json'}#20,50"], None)
    merged_path = tmp_path / "merged.json"
    assert curves.report([f"{old}#0,5", f"{tmp_path / 'new.json'}:{variant}>hxtool#20"], merged_path) == 0
    merged = json.loads(merged_path.read_text())
    assert sorted((r["system"], r["n"], r["upos"]) for r in merged["scores"]) == \
        [("hxtool", 0, 70.0), ("hxtool", 5, 77.0), ("hxtool", 20, 84.0)]
    # the old file's n = 20 stage goes with its score; the new file's pretraining stays, renamed
    assert sorted((r["system"], r["stage"]) for r in merged["stages"]) == \
        [("hxtool", "fewshot ug n=20 seed=1"), ("hxtool", "pretrain-mlm")]
    assert merged["stages"][0]["seconds"] == 5.0 and set(merged["cost"]) == {"hxtool"}
    assert merged["meta"]["renamed"] == {variant: "hxtool"} and merged["profile"]["shots"] == [0, 5, 20]


def test_pretrained_cache_reuses_one_pretraining_and_refuses_another_recipe(curves, tmp_path):
    """--pretrained-cache: the first run pretrains and keeps the checkpoint, a second run with the same recipe
    copies it (same scores, the stage says where from), a run with another recipe stops before training."""
    import torch

    data = tiny_data_dir(tmp_path / "data", SUITE_LAYOUT)
    cache = tmp_path / "cache"

    def run(name: str, steps: str) -> dict:
        out = tmp_path / f"{name}.json"
        assert curves.main(["--quick", "--systems", "hxtool", "--data-dir", str(data), "--base-model",
                            "tiny-random:xlm-roberta", "--source-steps", steps, "--lang-steps", "2", "--shots", "0",
                            "--eval-limit", "8", "--output", str(out), "--pretrained-cache", str(cache)]) == 0
        return json.loads(out.read_text())

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = run("first", "4")
        assert (cache / "suite-pretraining.json").is_file()
        kept = sorted(p.name for p in (cache / "checkpoint").iterdir())
        second = run("second", "4")
        with pytest.raises(SystemExit, match="another recipe"):
            run("third", "5")
    finally:
        torch.set_num_threads(threads)
    pretraining = [[s for s in r["stages"] if s["stage"] == "pretrain-mlm"][0] for r in (first, second)]
    assert "reused_from" not in pretraining[0] and pretraining[1]["reused_from"] == str(cache)
    assert pretraining[1]["last_loss"] == pretraining[0]["last_loss"]
    assert [(s["system"], s["upos"]) for s in second["scores"]] == [(s["system"], s["upos"]) for s in first["scores"]]
    assert sorted(p.name for p in (cache / "checkpoint").iterdir()) == kept  # the cache itself is left as it was


def test_report_joins_zero_shot_cells_of_another_add_language_to_few_shot_cells(curves, tmp_path):
    """add-language --adapt-encoder changes n = 0 alone (few-shot starts its updates anew): a system's n = 0
    from a run with it merges with its n > 0 from a run without it, in either order; two files whose n = 0
    differ in it do not merge."""
    adapted = dataclasses.replace(curves.PROFILES["quick"], adapt_encoder=True)
    row_only = dataclasses.replace(curves.PROFILES["quick"], adapt_encoder=False)
    zero = write_run(curves, tmp_path / "zero.json", "hxtool", [(0, 0, 75.0)], 1.0, profile=adapted)
    few = write_run(curves, tmp_path / "few.json", "hxtool", [(20, 1, 80.0)], 1.0, profile=row_only)
    for order in ([zero, few], [few, zero]):
        assert curves.report(order, tmp_path / "merged.json") == 0
        merged = json.loads((tmp_path / "merged.json").read_text())
        assert sorted((r["n"], r["upos"]) for r in merged["scores"]) == [(0, 75.0), (20, 80.0)]
    plain_zero = write_run(curves, tmp_path / "plain_zero.json", "hxtool", [(0, 0, 74.0), (5, 1, 78.0)], 1.0,
                           profile=row_only)
    with pytest.raises(SystemExit, match="different tuning options"):
        curves.report([zero, plain_zero], None)
    slower = write_run(curves, tmp_path / "slower.json", "hxtool", [(50, 1, 81.0)], 1.0,
                       profile=dataclasses.replace(curves.PROFILES["quick"], pretrain_lr=3e-4))
    with pytest.raises(SystemExit, match="different tuning options"):  # other options still count at n > 0
        curves.report([zero, slower], None)


def test_zero_shot_development_languages_run_at_n_0_only(curves, tmp_path, capsys):
    """kk, ta, zh, ar are targets for zero-shot choices only: they need no few-shot pool (none is read), and
    asking them for shots stops before any work with one line."""
    import torch

    layout = {**{k: v for k, v in SUITE_LAYOUT.items() if k.startswith(("ud/en", "ud/tr", "raw/en", "raw/tr"))},
              "ud/kk_ktb/test.conllu": "fo-pos-test.conllu", "raw/kk.txt": "fo-raw.txt"}
    data = tiny_data_dir(tmp_path / "data", layout)
    args = ["--quick", "--systems", "hxtool", "--data-dir", str(data), "--base-model", "tiny-random:xlm-roberta",
            "--source-steps", "4", "--lang-steps", "2", "--targets", "kk", "--eval-limit", "8"]
    with pytest.raises(SystemExit):
        curves.main([*args, "--shots", "0,5", "--output", str(tmp_path / "refused.json")])
    assert "kk: zero-shot development languages" in capsys.readouterr().err
    out = tmp_path / "kk.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert curves.main([*args, "--shots", "0", "--output", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    scores = json.loads(out.read_text())["scores"]
    assert {(r["target"], r["n"]) for r in scores} == {("kk", 0)}
    assert {"hxtool", "hxtool_meanrow"} <= {r["system"] for r in scores}
    assert not (tmp_path / "refused.json").exists()
