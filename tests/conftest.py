"""Shared fixtures. Fast tests use FakeEmbedder: hashed bags of words, deterministic, no model."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from qa.embedder import ModelSpec

ROOT = Path(__file__).resolve().parent.parent


class FakeEmbedder:
    """Words hashed into signed buckets: texts sharing words get similar vectors."""

    def __init__(self, dimension: int = 64, name: str = "fake-hash") -> None:
        self.spec = ModelSpec(name=name, dimension=dimension)
        self.calls = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.spec.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.spec.dimension
            vector[bucket] += 1.0 if digest[4] % 2 else -1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def encode_queries(self, texts):
        self.calls += 1
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.spec.dimension), np.float32)

    def encode_passages(self, texts, progress=None):
        self.calls += 1
        out = self.encode_queries(list(texts))
        if progress:
            progress(len(texts))
        return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(path: Path):
    """The document at `path`, named by its file name."""
    from qa.documents import load_document

    return load_document(path, path.name, path.as_posix())


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet won the 2012 challenge with a top-5 error of 15.3%.\n\n## Training\n\nIt was trained on two GTX 580 GPUs for five to six days.\n")
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database begun at Princeton by George A. Miller.\n")
    write(docs / "history.html", "<html><head><title>History</title><script>var x = 'hidden';</script></head><body><h1>History</h1><p>Fei-Fei Li led the ImageNet team.</p></body></html>")
    return docs
