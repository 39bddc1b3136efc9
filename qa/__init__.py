"""Document question answering: load an index, ask a question, get a cited extractive answer."""

from qa.errors import QAError
from qa.types import Answer, Chunk, Citation, Document

__all__ = ["Answer", "Chunk", "Citation", "Document", "QAError", "load"]


def load(index_dir="index", embedder=None):
    """Load the index in `index_dir` and the model it was built with; returns an `Engine`."""
    from qa.engine import Engine

    return Engine.load(index_dir, embedder=embedder)
