"""Document question answering: load an index, ask a question, get a cited extractive answer."""

from qa.errors import QAError
from qa.types import Answer, Chunk, Citation, Document

__all__ = ["Answer", "Chunk", "Citation", "Document", "QAError", "load"]


def load(index_dir="index", embedder=None, reader=None):
    """Load the index in `index_dir`, the model it was built with and the reader (by default the
    shipped one, qa.reader); returns an `Engine`."""
    from qa.engine import Engine

    return Engine.load(index_dir, embedder=embedder, reader=reader)
