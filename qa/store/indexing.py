"""The one embedding pipeline, used by `python -m ingest` and by `python -m qa eval`: chunk
each document, embed its chunks, and write an index version.

It streams: documents are chunked and embedded in batches of about BATCH_CHUNKS chunks and each
document's rows go straight to the index writer, so memory stays flat as the corpus grows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from qa import store
from qa.documents.chunking import Chunker, ChunkSettings
from qa.embedder import Embedder
from qa.types import Document

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH_CHUNKS = 1024  # chunks embedded together; the embedder sorts them by length


def embed_stream(
    documents: Iterable[Document],
    embedder: Embedder,
    chunker: Chunker,
    sizes: dict[str, int] | None = None,
    progress: Progress | None = None,
    total_bytes: int | None = None,
) -> Iterator[store.DocumentBlock]:
    """Each document's chunks and their vectors, in the order given.

    `progress` gets ("embedding", chunks done, chunks expected); the expected count is
    extrapolated from the bytes read so far when `total_bytes` (of all documents) is given.
    """
    sizes = sizes or {}
    meter = Meter(progress, total_bytes)
    batch: list[tuple[Document, list]] = []
    chunk_count = 0
    for doc in documents:
        chunks = chunker.split(doc)
        batch.append((doc, chunks))
        chunk_count += len(chunks)
        meter.read(sizes.get(doc.id, len(doc.text.encode("utf-8"))), len(chunks))
        if chunk_count >= BATCH_CHUNKS:
            yield from _embed_batch(batch, embedder, sizes, meter)
            batch, chunk_count = [], 0
    if batch:
        yield from _embed_batch(batch, embedder, sizes, meter)


def _embed_batch(batch, embedder: Embedder, sizes: dict[str, int], meter: "Meter") -> Iterator[store.DocumentBlock]:
    texts = [c.text for _, chunks in batch for c in chunks]
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        meter.embedded(done)

    vectors = embedder.encode_passages(texts, progress=advance)
    meter.finished(len(texts))
    row = 0
    now = time.time()
    for doc, chunks in batch:
        record = store.DocumentRecord(
            id=doc.id,
            source=doc.source,
            title=doc.title,
            kind=doc.kind,
            sha256=doc.sha256,
            size=sizes.get(doc.id, len(doc.text.encode("utf-8"))),
            chunks=len(chunks),
            indexed_at=now,
        )
        yield store.DocumentBlock(record=record, chunks=chunks, vectors=vectors[row : row + len(chunks)])
        row += len(chunks)


class Meter:
    """Chunks embedded so far and the expected total, for a progress bar (also fed by
    `ingest.cluster`, whose chunks are embedded elsewhere)."""

    def __init__(self, progress: Progress | None, total_bytes: int | None) -> None:
        self.progress, self.total_bytes = progress, total_bytes
        self.bytes_read = self.chunks_read = self.done = 0

    def read(self, size: int, chunks: int) -> None:
        self.bytes_read += size
        self.chunks_read += chunks

    def embedded(self, within_batch: int) -> None:
        if self.progress:
            self.progress("embedding", self.done + within_batch, self.expected())

    def finished(self, chunks: int) -> None:
        self.done += chunks
        self.embedded(0)

    def expected(self) -> int:
        if not self.total_bytes or not self.bytes_read:
            return self.chunks_read
        return max(self.chunks_read, round(self.chunks_read * self.total_bytes / self.bytes_read))


def build_index(documents: list[Document], index_dir: Path, embedder: Embedder, settings: ChunkSettings = ChunkSettings()) -> str:
    """A fresh index of in-memory documents (evaluation sets); returns the version written."""
    with store.writer_lock(index_dir):
        writer = store.IndexWriter(index_dir, model=embedder.spec, settings=settings)
        try:
            for block in embed_stream(sorted(documents, key=lambda d: d.id), embedder, Chunker(settings)):
                writer.add(block)
            return writer.publish()
        finally:
            writer.close()
