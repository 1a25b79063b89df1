"""Full fine-tuning baseline: every encoder weight plus a linear head.

Trained on the source languages' labelled data (warm-up then linear decay), then tuned on the
target's few shots (constant rate). Every new language therefore costs a whole copy of the encoder,
which is the point of comparison with Hyper-X's one embedding row.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
from torch import nn

from hxtool.baselines import (AdaptedEncoder, TrainResult, encoder_max_length, predict_words, tagging_loss,
                              tagging_stream, train_in_turns)
from hxtool.config import TrainConfig
from hxtool.data.batches import TagBatch
from hxtool.data.labelled import LabelledData
from hxtool.model.backbone import Backbone
from hxtool.model.heads import TaggingHead

# A rate that does not wreck a pretrained transformer; the head, trained from scratch, gets
# TrainConfig.head_lr as in hxtool.
ENCODER_LR = 5e-5


class FullFinetuneTagger(nn.Module):
    def __init__(self, backbone: Backbone, labels: list[str], head_dropout: float = 0.1) -> None:
        super().__init__()
        self.adapted = AdaptedEncoder(backbone)
        self.backbone = backbone
        self.labels = list(labels)
        self.head = TaggingHead(backbone.hidden_size, len(labels), head_dropout)

    @property
    def device(self) -> torch.device:
        return self.head.linear.weight.device

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.adapted.encoder.parameters())

    def unfreeze(self) -> list[nn.Parameter]:
        """load_backbone freezes the encoder; full fine-tuning trains all of it (embeddings included)."""
        params = self.encoder_parameters()
        for param in params:
            param.requires_grad_(True)
        return params

    def tag_logits(self, batch: TagBatch, pooling: str = "first") -> torch.Tensor:
        return self.head(self.adapted.word_states(batch, None, pooling))

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Every weight, so each few-shot run starts from the same source-trained model."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)

    def predict(self, sentences: list[list[str]], pooling: str = "first", batch_size: int = 32) -> list[list[str]]:
        self.eval()
        return predict_words(lambda batch: self.tag_logits(batch, pooling), self.backbone.tokenizer, sentences,
                             self.labels, encoder_max_length(self.backbone), batch_size, self.device)


def _train(model: FullFinetuneTagger, data: dict[str, LabelledData], config: TrainConfig, decay: bool) -> TrainResult:
    tokenizer = model.backbone.tokenizer
    streams = [tagging_stream(tokenizer, "pos", lang, d, model.labels, config.batch_size, config.max_length,
                              config.seed) for lang, d in data.items()]

    def loss(pair: tuple[str, str], batch: TagBatch) -> torch.Tensor:
        return tagging_loss(model.tag_logits(batch, config.pooling), batch.labels)

    groups = [(model.unfreeze(), config.lr), (list(model.head.parameters()), config.head_lr)]
    # The loop puts the model in training mode: encoder dropout on, as HyperX trains.
    return train_in_turns(model, loss, streams, groups, dataclasses.replace(config, decay=decay), "full fine-tuning")


def train_on_source(model: FullFinetuneTagger, sources: dict[str, LabelledData], config: TrainConfig) -> TrainResult:
    """Fine-tune encoder + head on the source languages' labelled data, one language per batch in turn."""
    return _train(model, sources, config, decay=config.decay)


def tune_on_shots(model: FullFinetuneTagger, lang: str, shots: LabelledData, config: TrainConfig) -> TrainResult:
    """Go on fine-tuning everything on the target's n sentences at a constant rate."""
    return _train(model, {lang: shots}, config, decay=False)


def added_per_language(model: FullFinetuneTagger) -> dict[str, torch.Tensor]:
    """What a tuned target language needs stored: the whole encoder and its head."""
    return {k: v.detach() for k, v in itertools.chain(
        (("encoder." + k, v) for k, v in model.adapted.encoder.state_dict().items()),
        (("head." + k, v) for k, v in model.head.state_dict().items()))}
