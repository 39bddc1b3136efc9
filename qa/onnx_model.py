"""A sentence-transformers model on ONNX Runtime: exported once from PyTorch on this machine,
checked against it, then run with onnxruntime + tokenizers + numpy only (no torch import).

The export lives in the venv (`<sys.prefix>/share/qa-onnx/`, or QA_ONNX_DIR), next to the model
package it derives from: `make setup` writes it, and the first use writes it when missing.
`python -m qa.onnx_model` exports; `python -m qa.onnx_model --compare` prints the speed and
agreement of the backends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from qa.embedder import ModelSpec, cpu_threads, encode_longest_first
from qa.errors import ModelError

EXPORT_FORMAT = 3  # bump when the export recipe changes: old exports are then ignored
MIN_COSINE = 0.9999  # fp32 export against PyTorch, on every sample text
MIN_INT8_COSINE = 0.8  # int8 moves vectors; below this the quantized model is broken, not just coarse
OPSET = 17
Variant = Literal["fp32", "int8"]
VARIANTS: tuple[Variant, ...] = ("fp32", "int8")

# Checked on export: short, empty, non-ASCII, and longer than max_seq_length (truncated).
SAMPLE_TEXTS = [
    "",
    " ",
    "Who led the ImageNet team?",
    "AlexNet won the 2012 challenge with a top-5 error of 15.3%.",
    "WordNet is a lexical database begun at Princeton by George A. Miller.",
    "Le modèle « MiniLM » – naïve façade, 東京, Ünïcödé ☃.",
    "It was trained on two GTX 580 GPUs for five to six days. " * 3,
    " ".join(f"Paragraph {i}: the index stores chunks, sentences and their vectors." for i in range(60)),
]


class OnnxUnavailable(ModelError):
    """The ONNX path cannot be used here; callers fall back to PyTorch with this message."""


class OnnxFallbackWarning(RuntimeWarning):
    pass


def export_root() -> Path:
    configured = os.environ.get("QA_ONNX_DIR")
    return Path(configured).expanduser() if configured else Path(sys.prefix) / "share" / "qa-onnx"


def export_folder(model_dir: Path) -> Path:
    """One folder per model version: a changed model folder (or export recipe) gets a fresh export."""
    model_dir = model_dir.resolve()
    digest = hashlib.sha256(f"{EXPORT_FORMAT}\n{model_dir}\n".encode())
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.suffix != ".md":
            stat = path.stat()
            digest.update(f"{path.relative_to(model_dir)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return export_root() / f"{model_dir.name}-{digest.hexdigest()[:16]}"


class OnnxEmbedder:
    """Same vectors as SentenceTransformerEmbedder (mean pooling, L2-normalized float32)."""

    BATCH = 32

    def __init__(self, model_dir: Path, onnx_file: Path, max_seq_length: int, spec: ModelSpec, variant: Variant) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.spec = spec
        self.variant = variant
        self.backend = "onnx" if variant == "fp32" else "onnx-int8"
        self.max_seq_length = max_seq_length
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_truncation(max_length=max_seq_length)  # tokenizer.json may say otherwise (128 here)
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))  # to the longest
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()
        # Its threads do not spin waiting for more work once a run ends: they would take the cores
        # from the reader, which runs right after a question is embedded (a question's p50 on the
        # default corpus 57 -> 34 ms; passages embed as fast either way).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.concatenate([self._encode(texts[i : i + self.BATCH]) for i in range(0, len(texts), self.BATCH)] or [self._encode([])])

    def encode_passages(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return encode_longest_first(texts, self.spec.dimension, self.BATCH, self._encode, progress)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.spec.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([t.strip() for t in texts])  # sentence-transformers strips too
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64), "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self.session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.ascontiguousarray(pooled, dtype=np.float32)


def load_onnx_embedder(model_dir: Path, spec: ModelSpec, variant: Variant = "fp32") -> OnnxEmbedder:
    """The exported model, exporting it first when it is missing or unreadable (one process at a
    time). Raises OnnxUnavailable when it cannot be exported or its vectors disagree with PyTorch."""
    model_dir = model_dir.resolve()
    _check_pooling(model_dir)
    folder = export_folder(model_dir)
    embedder = _open(model_dir, folder, spec, variant)
    if embedder is not None:
        return embedder
    from filelock import FileLock

    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / "export.lock"), timeout=900)
        lock.acquire()
    except OSError as exc:
        raise OnnxUnavailable(
            f"Cannot export the model to ONNX in {folder} ({exc}); set QA_ONNX_DIR to a writable folder. Using PyTorch."
        ) from None
    try:
        embedder = _open(model_dir, folder, spec, variant)  # another process may have exported meanwhile
        if embedder is None:
            export(model_dir, folder)
            embedder = _open(model_dir, folder, spec, variant)
    except ModelError:
        raise
    except Exception as exc:  # not recorded: a full disk or a missing package is fixed, and the next run tries again
        raise OnnxUnavailable(f"Exporting {model_dir.name} to ONNX failed ({type(exc).__name__}: {exc}); using PyTorch.") from None
    finally:
        lock.release()
    if embedder is None:
        raise OnnxUnavailable(f"The ONNX export in {folder} cannot be loaded even after exporting it again; using PyTorch.")
    return embedder


def _open(model_dir: Path, folder: Path, spec: ModelSpec, variant: Variant) -> OnnxEmbedder | None:
    """The embedder from a complete export, None when it must be (re-)exported."""
    record = read_record(folder)
    if record is None:
        return None
    if record.get("rejected"):
        raise OnnxUnavailable(record["rejected"])
    if variant == "int8" and record.get("int8_rejected"):
        raise OnnxUnavailable(f"The int8 ONNX model of {model_dir.name} is unusable ({record['int8_rejected']}); using PyTorch.")
    entry = record.get(variant)
    onnx_file = folder / f"model-{variant}.onnx"
    if not entry or not onnx_file.is_file() or onnx_file.stat().st_size != entry["bytes"]:
        return None
    if record["dimension"] != spec.dimension and spec.dimension:
        raise OnnxUnavailable(f"The ONNX export gives {record['dimension']}-dimensional vectors, the model {spec.dimension}.")
    try:
        embedder = OnnxEmbedder(model_dir, onnx_file, int(record["max_seq_length"]), spec, variant)
    except ImportError as exc:
        raise OnnxUnavailable(f"onnxruntime or tokenizers is not installed ({exc}); run `make setup`.") from None
    except ModelError:  # a setting to correct (QA_THREADS), not a damaged file
        raise
    except Exception:  # a damaged file fails inside onnxruntime in many ways: export it again
        return None
    return embedder


def read_record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == EXPORT_FORMAT else None


def export(model_dir: Path, folder: Path) -> dict:
    """Export the transformer with torch.onnx (fp32) and quantize it (int8), check both against the
    PyTorch model on SAMPLE_TEXTS, and publish them with export.json, each by an atomic rename.
    An fp32 export that disagrees is recorded as rejected, so later runs fall back at once."""
    from qa.embedder import SentenceTransformerEmbedder

    reference = SentenceTransformerEmbedder(model_dir)
    model = reference.model
    spec = ModelSpec(name=model_dir.name, dimension=reference.spec.dimension)
    record: dict = {"format": EXPORT_FORMAT, "model": str(model_dir), "dimension": spec.dimension}
    record["max_seq_length"] = int(model.max_seq_length)
    expected = reference.encode_passages(SAMPLE_TEXTS)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as scratch:
        fp32 = Path(scratch) / "model-fp32.onnx"
        _torch_export(model, fp32)
        int8 = Path(scratch) / "model-int8.onnx"
        quantize_int8(fp32, int8)
        for variant, path in (("fp32", fp32), ("int8", int8)):
            got = OnnxEmbedder(model_dir, path, record["max_seq_length"], spec, variant).encode_passages(SAMPLE_TEXTS)
            cosines = np.sum(got * expected, axis=1)
            record[variant] = {"bytes": path.stat().st_size, "min_cosine": float(cosines.min()), "mean_cosine": float(cosines.mean())}
        low = record["fp32"]["min_cosine"]
        if low < MIN_COSINE:
            record["rejected"] = (
                f"The ONNX export of {model_dir.name} disagrees with PyTorch (cosine {low:.6f} < {MIN_COSINE}); "
                "using PyTorch (set QA_BACKEND=torch to silence this)."
            )
        elif record["int8"]["min_cosine"] < MIN_INT8_COSINE:
            record["int8_rejected"] = f"cosine to PyTorch {record['int8']['min_cosine']:.3f} < {MIN_INT8_COSINE}"
        for variant in VARIANTS:
            if "rejected" not in record and (variant == "fp32" or "int8_rejected" not in record):
                os.replace(Path(scratch) / f"model-{variant}.onnx", folder / f"model-{variant}.onnx")
        _write_json(folder / "export.json", record)
    _remove_stale_exports(model_dir, folder)
    return record


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of an fp32 ONNX file: per-channel weight scales, weights in 7 bits.

    Per-channel scales: the embedding model's minimum cosine to PyTorch on SAMPLE_TEXTS was 0.97
    with them, 0.91 per tensor (8-bit weights; 0.96 now). 7 bits (-64 to 64, ONNX Runtime's
    reduce_range): an x86 CPU without VNNI (AVX2 only) multiplies the uint8 activations by the
    int8 weights in pairs summed into 16 bits, which overflow with full-range weights and change
    the results (the reader's dev F1 40.1 on such a CPU, 41.4 with VNNI); with 7-bit weights no
    pair can overflow, so every x86 CPU computes the same products, with the same kernels as before.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic  # needs the onnx package, as torch.onnx does

    root = logging.getLogger()
    was_disabled, root.disabled = root.disabled, True  # its "consider pre-processing" hint: that fails on these graphs
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        root.disabled = was_disabled


def _remove_stale_exports(model_dir: Path, keep: Path) -> None:
    """Exports of earlier versions of this model folder (~110 MB each) can no longer be used."""
    for other in keep.parent.glob(f"{model_dir.name}-*"):
        try:
            source = json.loads((other / "export.json").read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError):
            continue
        if other != keep and source == str(model_dir):
            shutil.rmtree(other, ignore_errors=True)


def _torch_export(model, target: Path) -> None:
    import torch

    transformer = model[0].auto_model.eval()
    # Plain attention exports as plain MatMul and Softmax; PyTorch's fused attention exports with a
    # NaN guard in every layer that ONNX Runtime runs 15-20% slower on this CPU. Same vectors.
    transformer.set_attn_implementation("eager")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model[0].tokenizer.model_input_names]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs))).last_hidden_state

    # A padded batch of two lengths, so the traced graph keeps the attention mask.
    features = model[0].tokenizer(["a short one", "and a somewhat longer second text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in names + ["last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            tuple(features[n] for n in names),
            str(target),
            dynamo=False,  # the TorchScript exporter: needs the onnx package, not onnxscript
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )


def _check_pooling(model_dir: Path) -> None:
    """Only mean pooling is reproduced after the ONNX graph; say so before exporting anything."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = modules[kinds.index("Pooling")]
        config = json.loads((model_dir / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise OnnxUnavailable(f"{model_dir} has no readable sentence-transformers pooling config; using PyTorch.") from None
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnavailable(f"{model_dir.name} has modules {kinds}; the ONNX path has Transformer, Pooling, Normalize only, using PyTorch.")
    modes = {k for k, v in config.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise OnnxUnavailable(f"{model_dir.name} uses {', '.join(sorted(modes)) or 'no'} pooling; the ONNX path has mean pooling only, using PyTorch.")


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def warn_fallback(exc: OnnxUnavailable) -> None:
    warnings.warn(str(exc), OnnxFallbackWarning, stacklevel=3)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from qa.cli_support import run_safely

    parser = argparse.ArgumentParser(prog="python -m qa.onnx_model", description="Export the bundled model to ONNX (once), or compare the backends.")
    parser.add_argument("--compare", action="store_true", help="print embed time, throughput and agreement of torch, onnx and onnx-int8")
    args = parser.parse_args(argv)
    return run_safely(compare if args.compare else _export_bundled)


def _export_bundled() -> int:
    """`make setup` runs this, so the first question does not wait for the export."""
    from qa.embedder import bundled_model_path, load_embedder

    embedder = load_embedder(backend="onnx")  # exports when missing; warns and falls back when it cannot
    folder = export_folder(bundled_model_path())
    record = read_record(folder)
    if isinstance(embedder, OnnxEmbedder) and record is not None:
        print(f"ONNX export of {embedder.spec.name} in {folder}: cosine to PyTorch >= {record['fp32']['min_cosine']:.6f} "
              f"(int8 >= {record['int8']['min_cosine']:.3f}), at most {embedder.max_seq_length} tokens.")
    else:
        print("The ONNX export is not usable here (see the warning above): questions and ingest use PyTorch.")
    return 0


def compare(runs: int = 200) -> int:
    """Question embedding (one short query, median of `runs`), passage throughput (~800-character
    texts, batches of 32, median of 3) and vector agreement with PyTorch, for each backend."""
    import statistics
    import time

    from qa.embedder import BACKENDS, load_embedder

    words = "retrieval index chunk sentence vector model answer question document corpus passage token".split()
    rng = np.random.default_rng(7)
    passages = []
    for _ in range(128):
        text = ""
        while len(text) < 800:
            text += " ".join(rng.choice(words, size=12)) + ". "
        passages.append(text[:800])
    query = "Who led the ImageNet team?"
    reference = None
    print(f"{'backend':<10} {'embed ms':>9} {'chunks/s':>9} {'min cos':>9} {'mean cos':>9}")
    for backend in BACKENDS:
        embedder = load_embedder(backend=backend)
        embedder.encode_queries([query])
        laps = []
        for _ in range(runs):
            began = time.perf_counter()
            embedder.encode_queries([query])
            laps.append((time.perf_counter() - began) * 1000)
        rates = []
        for _ in range(3):
            began = time.perf_counter()
            vectors = embedder.encode_passages(passages)
            rates.append(len(passages) / (time.perf_counter() - began))
        vectors = np.concatenate([vectors, embedder.encode_queries(SAMPLE_TEXTS + [query])])
        reference = vectors if reference is None else reference
        cosines = np.sum(vectors * reference, axis=1)
        print(f"{backend:<10} {statistics.median(laps):>9.2f} {statistics.median(rates):>9.1f} {cosines.min():>9.5f} {cosines.mean():>9.5f}", flush=True)
    return 0


if __name__ == "__main__":
    from qa.onnx_model import main as imported_main  # one OnnxEmbedder class, not a second copy in __main__

    sys.exit(imported_main())
