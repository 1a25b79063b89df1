"""Tiny random encoders with a character-level tokenizer, built offline in a second.

They serve the test-suite and the tiny recipe (`--base-model tiny-random:bert`): everything runs
end to end without a download, only the numbers mean nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_PREFIX = "tiny-random:"
ARCHS = ("bert", "xlm-roberta", "distilbert")
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_/%&äöüçşğıéèàâêîôûñøåæþðıłż"


def _tokenizer(arch: str):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if arch == "xlm-roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        cls, pad, sep, unk, mask = specials
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        pad, unk, cls, sep, mask = specials
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in ALPHABET:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault("##" + ch, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=unk, pad_token=pad, cls_token=cls, sep_token=sep, mask_token=mask,
        bos_token=cls, eos_token=sep, model_max_length=128,
    )


def build_tiny_model(dest: str | Path, arch: str = "bert", seed: int = 0, with_mlm_head: bool = True,
                     hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny random encoder and its tokenizer to `dest` as a standard transformers folder."""
    from hxtool.model.backbone import transformers_quiet

    with transformers_quiet():
        return _build_tiny_model(dest, arch, seed, with_mlm_head, hidden, layers)


def _build_tiny_model(dest: str | Path, arch: str, seed: int, with_mlm_head: bool, hidden: int,
                      layers: int) -> Path:
    import torch
    from transformers import (BertConfig, BertForMaskedLM, BertModel, DistilBertConfig, DistilBertForMaskedLM,
                              XLMRobertaConfig, XLMRobertaForMaskedLM)

    if arch not in ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose from {ARCHS}")
    tokenizer = _tokenizer(arch)
    vocab_size = len(tokenizer)
    torch.manual_seed(seed)
    if arch == "bert":
        config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=130)
        model = BertForMaskedLM(config) if with_mlm_head else BertModel(config, add_pooling_layer=False)
    elif arch == "xlm-roberta":
        config = XLMRobertaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                  num_attention_heads=2, intermediate_size=hidden * 2,
                                  max_position_embeddings=132, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        model = XLMRobertaForMaskedLM(config)
    else:
        config = DistilBertConfig(vocab_size=vocab_size, dim=hidden, n_layers=layers, n_heads=2,
                                  hidden_dim=hidden * 2, max_position_embeddings=130)
        model = DistilBertForMaskedLM(config)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def resolve_tiny(name: str) -> str:
    """Map `tiny-random:ARCH` to a cached folder, building it on first use; other names pass through."""
    if not name.startswith(TINY_PREFIX):
        return name
    arch = name[len(TINY_PREFIX):]
    if arch not in ARCHS:
        from hxtool.errors import HxError

        raise HxError(f"unknown tiny model {name!r}; choose from {', '.join(TINY_PREFIX + a for a in ARCHS)}")
    from hxtool.model.offline_base import cache_root

    target = cache_root() / f"tiny-random-{arch}"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        build_tiny_model(tmp, arch)
        try:
            os.replace(tmp, target)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
