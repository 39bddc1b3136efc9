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


def weights_from_onnx(path: Path) -> dict[str, torch.Tensor]:
    """A shipped reader's weights (`reader.onnx`, int8 or fp32, as qa.reader.export writes it) as a
    state dict: int8 weights are dequantized (scale times the integer less its zero point). The
    exporter keeps each parameter's name, except a linear layer's weight, which becomes an anonymous
    transposed MatMul operand: its module is named by the MatMul node."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def value(name: str):
        if name + "_quantized" not in arrays:
            return arrays[name]
        scale, zero = arrays[name + "_scale"], arrays[name + "_zero_point"].astype("float32")
        return (arrays[name + "_quantized"].astype("float32") - zero) * scale  # per output column or per tensor

    named = {n.removesuffix("_quantized") for n in arrays if "::" not in n and not n.endswith(("_scale", "_zero_point"))}
    state = {name: value(name) for name in named}
    for node in graph.node:
        if node.op_type in ("MatMul", "MatMulInteger"):
            operand = next((i.removesuffix("_quantized") for i in node.input if i.startswith("onnx::MatMul")), None)
            if operand is not None:
                state[node.name.strip("/").rpartition("/")[0].replace("/", ".") + ".weight"] = value(operand).T
    return {name: torch.from_numpy(array.astype("float32").copy()) for name, array in state.items()}


def load_initial(model: SpanReader, folder: Path) -> None:
    """Start from an earlier reader: a training --out folder (reader.safetensors) or a shipped one (reader.onnx)."""
    if (folder / "reader.safetensors").is_file():
        load_weights(model, folder / "reader.safetensors")
        return
    state = weights_from_onnx(folder / "reader.onnx")
    missing = set(model.state_dict()) - set(state) - {k for k in model.state_dict() if k.startswith("encoder.pooler.") or k.endswith("position_ids")}
    if missing:
        raise ValueError(f"{folder / 'reader.onnx'} lacks weights for {sorted(missing)[:3]}: it is not a reader qa.reader.export wrote")
    model.load_state_dict(state, strict=False)  # the pooler is not part of the reader's graph


def save_weights(model: SpanReader, path: Path, dtype=torch.float32) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, str(path))
