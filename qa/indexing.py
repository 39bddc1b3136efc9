"""The one embedding pipeline, used by `python -m ingest` and by `python -m qa eval`:
chunk each document, split it into sentences, embed both, and write an index version."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from qa import store
from qa.chunking import Chunker, ChunkSettings
from qa.embedder import Embedder
from qa.text import split_sentences
from qa.types import Document

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def embed_documents(
    documents: list[Document],
    embedder: Embedder,
    chunker: Chunker,
    sizes: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> list[store.DocumentBlock]:
    """Chunks, sentences and their vectors for each document, embedded in one pass."""
    chunked = [(doc, chunker.split(doc), np.array(split_sentences(doc.text), dtype=np.int64).reshape(-1, 2)) for doc in documents]
    texts = [c.text for _, chunks, _ in chunked for c in chunks]
    texts += [doc.text[s:e] for doc, _, spans in chunked for s, e in spans]
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress("embedding", done, len(texts))

    advance(0)
    vectors = embedder.encode_passages(texts, progress=advance)
    chunk_row = 0
    sentence_row = sum(len(chunks) for _, chunks, _ in chunked)
    now = time.time()
    blocks = []
    for doc, chunks, spans in chunked:
        record = store.DocumentRecord(
            id=doc.id,
            source=doc.source,
            title=doc.title,
            kind=doc.kind,
            sha256=doc.sha256,
            size=(sizes or {}).get(doc.id, len(doc.text.encode("utf-8"))),
            chunks=len(chunks),
            sentences=len(spans),
            indexed_at=now,
        )
        blocks.append(
            store.DocumentBlock(
                record=record,
                chunks=chunks,
                vectors=vectors[chunk_row : chunk_row + len(chunks)],
                sentence_spans=spans,
                sentence_vectors=vectors[sentence_row : sentence_row + len(spans)],
            )
        )
        chunk_row += len(chunks)
        sentence_row += len(spans)
    return blocks


def build_index(documents: list[Document], index_dir: Path, embedder: Embedder, settings: ChunkSettings = ChunkSettings()) -> str:
    """A fresh index of in-memory documents (evaluation sets); returns the version written."""
    blocks = embed_documents(documents, embedder, Chunker(settings))
    with store.writer_lock(index_dir):
        return store.write_index(index_dir, model=embedder.spec, settings=settings, blocks=blocks)
