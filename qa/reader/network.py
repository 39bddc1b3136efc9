"""The reader as a PyTorch module: the bundled MiniLM encoder with a span head.

Used to train (qa.reader.train) and to export to ONNX (qa.reader.export); questions are read
by ONNX Runtime and never import torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class SpanReader(nn.Module):
    """Start and end logits for every token; [CLS] (position 0) stands for "no answer"."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.span = nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        logits = self.span(states).float()
        return logits[..., 0], logits[..., 1]


def from_encoder(model_dir: Path, seed: int) -> SpanReader:
    """A fresh reader: the encoder's pretrained weights and a seeded, small span head."""
    from transformers import AutoModel

    torch.manual_seed(seed)
    model = SpanReader(AutoModel.from_pretrained(str(model_dir)))
    nn.init.normal_(model.span.weight, std=0.02)
    nn.init.zeros_(model.span.bias)
    return model


def load_weights(model: SpanReader, path: Path) -> None:
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=False)  # the encoder's position-id buffer may be absent


def save_weights(model: SpanReader, path: Path, dtype=torch.float32) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, str(path))
