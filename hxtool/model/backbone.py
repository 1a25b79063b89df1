"""Load a frozen HF encoder (by hub name or local folder) and fingerprint it.

Where each architecture keeps its feed-forward outputs and MLM head is listed here; the adapter
hooks that use those places live in hxtool.model.hooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from hxtool.errors import HxError

# The feed-forward output module per layer, by model type: its output is added to the residual next.
FFN_OUTPUT = {
    "bert": ("encoder.layer", "output.dense"),
    "roberta": ("encoder.layer", "output.dense"),
    "xlm-roberta": ("encoder.layer", "output.dense"),
    "electra": ("encoder.layer", "output.dense"),
    "distilbert": ("transformer.layer", "ffn"),
}

# Where each supported architecture keeps its pretrained MLM head (transform, LayerNorm, output bias).
MLM_HEAD_KEYS = {
    "bert": ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),
    "roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
    "xlm-roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
    "distilbert": ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),
}


def quiet_transformers() -> None:
    """Silence transformers for the whole process (for scripts and benchmarks that want it)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


@contextlib.contextmanager
def transformers_quiet() -> Iterator[None]:
    """Transformers' load reports and progress bars would drown hxtool's own output while it loads a
    model; the caller's logging settings come back afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass
class Backbone:
    encoder: nn.Module
    tokenizer: object
    model_type: str
    name: str  # as the user gave it
    path: str  # what transformers loaded (a local folder after resolution)
    fingerprint: str  # revision or hash of the weights, to check checkpoints against
    mlm_head_state: dict[str, torch.Tensor] | None  # transform/LayerNorm/bias of the base's own MLM head

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size if hasattr(self.encoder.config, "hidden_size") else self.encoder.config.dim

    @property
    def num_layers(self) -> int:
        return len(ffn_output_modules(self.encoder, self.model_type))

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    @property
    def max_length(self) -> int:
        """Longest input the encoder takes, special tokens included."""
        config = self.encoder.config
        positions = getattr(config, "max_position_embeddings", 512)
        if getattr(config, "model_type", "") in ("roberta", "xlm-roberta"):
            positions -= 2  # RoBERTa-style position ids start after the padding index
        return int(min(positions, 512, getattr(self.tokenizer, "model_max_length", 512) or 512))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers at all: without this, an offline machine spends half a minute in
    the hub client's retries before failing."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def weights_fingerprint(path: str) -> str:
    """A stable identity for a base model: the hub revision, else sha256 of its weight files."""
    folder = Path(path)
    if not folder.is_dir():
        return path
    digest = hashlib.sha256()
    weight_files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    for file in weight_files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def _mlm_head_state(model: nn.Module, model_type: str, missing: set[str]) -> dict[str, torch.Tensor] | None:
    keys = MLM_HEAD_KEYS.get(model_type)
    if keys is None:
        return None
    dense, norm, bias = keys
    if any(k.startswith(dense) or k.startswith(norm) or k == bias for k in missing):
        return None  # the base was saved without its MLM head (e.g. multilingual-e5-small)
    state = model.state_dict()
    return {
        "transform.weight": state[f"{dense}.weight"].clone(),
        "transform.bias": state[f"{dense}.bias"].clone(),
        "norm.weight": state[f"{norm}.weight"].clone(),
        "norm.bias": state[f"{norm}.bias"].clone(),
        "bias": state[bias].clone(),
    }


def load_backbone(name_or_path: str, device: str | torch.device = "cpu") -> Backbone:
    """Load tokenizer and encoder (by hub name or local path), frozen, with the base's MLM head if any."""
    with transformers_quiet():
        return _load_backbone(name_or_path, device)


def _load_backbone(name_or_path: str, device: str | torch.device) -> Backbone:
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from hxtool.model.tiny import resolve_tiny
    from hxtool.model.offline_base import offline_hint, resolve_base_model

    path = resolve_tiny(resolve_base_model(name_or_path))
    local = Path(path).exists()
    offline = True  # local folder or the HF cache first; the hub only when those fail and it answers
    try:
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except OSError:
            if local or not hub_reachable():
                raise
            offline = False
            config = AutoConfig.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        if local:
            raise HxError(f"cannot load base model from {path}: {str(exc).splitlines()[0]}") from None
        raise HxError(f"cannot load base model {name_or_path!r}: it is not a local folder, not in the "
                      f"Hugging Face cache, and the hub is unreachable. {offline_hint(name_or_path)}") from None
    # hxtool tokenises whole sentences and splits them into chunks that fit itself, so the tokenizer's
    # one-off "sequence length is longer than the maximum" warning would only mislead: mark it as shown.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    model_type = config.model_type
    if model_type not in FFN_OUTPUT:
        raise HxError(
            f"base model type {model_type!r} is not supported (supported: {', '.join(sorted(FFN_OUTPUT))})"
        )
    head_state = None
    if model_type in MLM_HEAD_KEYS:
        mlm_model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True,
                                                               local_files_only=offline)
        head_state = _mlm_head_state(mlm_model, model_type, set(info["missing_keys"]))
        encoder = mlm_model.base_model
    else:
        encoder = AutoModel.from_pretrained(path, local_files_only=offline)
    encoder.to(device)
    encoder.eval()
    for param in encoder.parameters():
        param.requires_grad_(False)
    from hxtool.model.offline_base import read_source_info

    built = read_source_info(path)  # a folder hxtool built records its own revision: no need to hash 0.5 GB
    revision = getattr(config, "_commit_hash", None) or (built or {}).get("revision")
    fingerprint = revision or weights_fingerprint(path)
    return Backbone(encoder, tokenizer, model_type, name_or_path, path, fingerprint, head_state)


def ffn_output_modules(encoder: nn.Module, model_type: str) -> list[nn.Module]:
    layers_path, ffn_path = FFN_OUTPUT[model_type]
    layers = encoder.get_submodule(layers_path)
    return [layer.get_submodule(ffn_path) for layer in layers]


def layernorm_parameters(encoder: nn.Module) -> dict[str, nn.Parameter]:
    """Every LayerNorm weight and bias of the base model, by its name in the encoder."""
    found = {}
    for module_name, module in encoder.named_modules():
        if isinstance(module, nn.LayerNorm):
            for param_name, param in module.named_parameters(recurse=False):
                found[f"{module_name}.{param_name}"] = param
    return found


def default_device(requested: str | None) -> str:
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise HxError("--device cuda was asked for, but torch sees no CUDA device")
        return requested
    return os.environ.get("HXTOOL_DEVICE", "cpu")
