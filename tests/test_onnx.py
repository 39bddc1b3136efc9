"""The ONNX Runtime embedder: same vectors as PyTorch, a damaged export is made again, and it is
the default. Exports made here go to a temporary QA_ONNX_DIR, never over the venv's one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa import embedder as embedder_module
from qa.embedder import BUNDLED, ModelSpec, SentenceTransformerEmbedder, bundled_model_path, load_embedder
from qa.errors import ModelError
from qa.onnx_model import EXPORT_FORMAT, MIN_COSINE, OnnxEmbedder, OnnxFallbackWarning, export_folder, load_onnx_embedder
from tests.conftest import ROOT, FakeEmbedder

LONG = " ".join(f"Sentence {i} of a long document about the ImageNet challenge and its winners." for i in range(80))
TEXTS = ["", "  ", "?", "Who led the ImageNet team?", "Fei-Fei Li led the ImageNet team at Stanford.", "Ünïcödé, 東京 and ☃.", LONG]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    embedder = load_embedder(backend="onnx")  # exports into the venv on first use, as `make setup` does
    assert isinstance(embedder, OnnxEmbedder), "the ONNX path fell back to PyTorch; see the warning"
    return embedder


@pytest.fixture(scope="module")
def pytorch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(autouse=True)
def default_backend(monkeypatch):
    monkeypatch.delenv("QA_BACKEND", raising=False)


@pytest.mark.integration
def test_vectors_match_pytorch_including_truncated_and_empty_texts(onnx_embedder, pytorch_embedder):
    assert len(onnx_embedder.tokenizer.encode(LONG).ids) == onnx_embedder.max_seq_length == 256  # LONG is cut
    reference = pytorch_embedder
    assert reference.model.max_seq_length == onnx_embedder.max_seq_length
    for encode in ("encode_queries", "encode_passages"):
        got, expected = getattr(onnx_embedder, encode)(TEXTS), getattr(reference, encode)(TEXTS)
        assert got.dtype == np.float32 and got.shape == expected.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.sum(got * expected, axis=1).min() >= MIN_COSINE
    single = np.concatenate([onnx_embedder.encode_queries([t]) for t in TEXTS])  # no padding: same vectors
    assert np.sum(single * onnx_embedder.encode_queries(TEXTS), axis=1).min() >= MIN_COSINE
    assert onnx_embedder.encode_passages([]).shape == (0, 384)


@pytest.mark.integration
def test_default_embedder_is_onnx_and_interchangeable_with_pytorch(onnx_embedder):
    default = load_embedder()
    assert isinstance(default, OnnxEmbedder) and default.variant == "fp32"
    assert default.spec == ModelSpec(BUNDLED, 384)  # what an index built with PyTorch records
    assert isinstance(load_embedder(ModelSpec(BUNDLED, 384)), OnnxEmbedder)


@pytest.mark.integration
def test_int8_vectors_are_recorded_as_such(onnx_embedder):
    int8 = load_embedder(backend="onnx-int8")
    assert int8.spec.name == BUNDLED + embedder_module.INT8_SUFFIX  # an int8 index says so in its manifest
    with pytest.warns(RuntimeWarning, match="holds int8 vectors"):
        assert load_embedder(int8.spec, backend="torch").variant == "int8"
    with pytest.warns(RuntimeWarning, match="holds fp32 vectors"):
        assert load_embedder(ModelSpec(BUNDLED, 384), backend="onnx-int8").variant == "fp32"
    with pytest.warns(RuntimeWarning, match="Indexes are built with fp32 vectors"):  # a new index, not yet holding any
        assert load_embedder(ModelSpec(BUNDLED, 0), backend="onnx-int8").variant == "fp32"


def test_an_index_of_8_bit_int8_vectors_is_refused_with_the_rebuild_command():
    with pytest.raises(ModelError, match=r"8-bit weights.*python -m ingest --rebuild"):  # no backend gives its vectors now
        load_embedder(ModelSpec(BUNDLED + "+int8", 384), backend="onnx-int8")


@pytest.mark.integration
def test_questions_do_not_import_torch(onnx_embedder):
    code = "import sys; from qa.embedder import load_embedder; load_embedder().encode_queries(['hi']); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.integration
def test_damaged_export_is_exported_again(onnx_embedder, tmp_path, monkeypatch):
    model_dir = bundled_model_path()
    source = export_folder(model_dir)
    monkeypatch.setenv("QA_ONNX_DIR", str(tmp_path))
    folder = export_folder(model_dir)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.lock"))
    onnx_file = folder / "model-fp32.onnx"
    size = onnx_file.stat().st_size
    onnx_file.write_bytes(b"\x00garbage" * (size // 8) + b"\x00" * (size % 8))  # same size: only loading finds it
    embedder = load_onnx_embedder(model_dir, ModelSpec(BUNDLED, 384))
    assert np.sum(embedder.encode_queries(TEXTS) * onnx_embedder.encode_queries(TEXTS), axis=1).min() >= MIN_COSINE
    assert json.loads((folder / "export.json").read_text())["fp32"]["min_cosine"] >= MIN_COSINE
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no scratch files left behind


def test_rejected_export_falls_back_to_pytorch_with_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_ONNX_DIR", str(tmp_path))
    folder = export_folder(bundled_model_path())
    folder.mkdir(parents=True)
    reason = "The ONNX export of model disagrees with PyTorch (cosine 0.98 < 0.9999); using PyTorch."
    (folder / "export.json").write_text(json.dumps({"format": EXPORT_FORMAT, "rejected": reason}))
    monkeypatch.setattr(embedder_module, "SentenceTransformerEmbedder", lambda path=None: FakeEmbedder(384, BUNDLED))
    with pytest.warns(OnnxFallbackWarning) as caught:
        embedder = load_embedder()
    assert isinstance(embedder, FakeEmbedder)
    assert [str(w.message) for w in caught] == [reason]


def test_unknown_backend_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("QA_BACKEND", "tensorflow")
    with pytest.raises(ModelError, match="torch, onnx, onnx-int8"):
        load_embedder()


@pytest.mark.integration
def test_qa_threads_sets_the_models_threads(monkeypatch):
    """Several processes on one machine (app replicas, Dask workers) each take a share of the cores."""
    monkeypatch.setenv("QA_THREADS", "1")
    embedder = load_embedder(backend="onnx")
    assert embedder.session.get_session_options().intra_op_num_threads == 1
    for bad in ["0", "two", "-3"]:
        monkeypatch.setenv("QA_THREADS", bad)
        with pytest.raises(ModelError, match="QA_THREADS must be a whole number of at least 1"):
            load_embedder(backend="onnx")


def _matmul_model(path, weights):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rows, columns = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, columns])],
        [numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_int8_models_compute_the_same_products_on_every_cpu(tmp_path):
    # The largest activations times the largest weights: on a CPU without VNNI, full-range int8
    # weights overflow the 16-bit sums of pairs of products and the result comes out about halved.
    import onnxruntime

    from qa.onnx_model import quantize_int8

    weights = np.ones((64, 4), dtype=np.float32)
    weights[:, 1] = -1.0
    weights[::2, 2] = 0.5
    x = np.full((1, 64), 3.0, dtype=np.float32)
    _matmul_model(tmp_path / "fp32.onnx", weights)
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    np.testing.assert_allclose(got, x @ weights, rtol=0.02)
