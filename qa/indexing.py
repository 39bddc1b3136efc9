"""The one embedding pipeline, used by `python -m ingest` and by `python -m qa eval`: chunk
each document, split it into sentences, embed both, and write an index version.

It streams: documents are chunked and embedded in batches of about BATCH_TEXTS texts and each
document's rows go straight to the index writer, so memory stays flat as the corpus grows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from qa import store
from qa.chunking import Chunker, ChunkSettings
from qa.embedder import Embedder
from qa.text import split_sentences
from qa.types import Document

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH_TEXTS = 1024  # passages and sentences embedded together; the embedder sorts them by length


def embed_stream(
    documents: Iterable[Document],
    embedder: Embedder,
    chunker: Chunker,
    sizes: dict[str, int] | None = None,
    progress: Progress | None = None,
    total_bytes: int | None = None,
) -> Iterator[store.DocumentBlock]:
    """Each document's chunks, sentences and their vectors, in the order given.

    `progress` gets ("embedding", chunks done, chunks expected); the expected count is
    extrapolated from the bytes read so far when `total_bytes` (of all documents) is given.
    """
    sizes = sizes or {}
    meter = _Meter(progress, total_bytes)
    batch: list[tuple[Document, list, np.ndarray]] = []
    texts = 0
    for doc in documents:
        chunks = chunker.split(doc)
        spans = np.array(split_sentences(doc.text), dtype=np.int64).reshape(-1, 2)
        batch.append((doc, chunks, spans))
        texts += len(chunks) + len(spans)
        meter.read(sizes.get(doc.id, len(doc.text.encode("utf-8"))), len(chunks))
        if texts >= BATCH_TEXTS:
            yield from _embed_batch(batch, embedder, sizes, meter)
            batch, texts = [], 0
    if batch:
        yield from _embed_batch(batch, embedder, sizes, meter)


def _embed_batch(batch, embedder: Embedder, sizes: dict[str, int], meter: "_Meter") -> Iterator[store.DocumentBlock]:
    texts = [c.text for _, chunks, _ in batch for c in chunks]
    chunk_count = len(texts)
    texts += [doc.text[s:e] for doc, _, spans in batch for s, e in spans]
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        meter.embedded(chunk_count * done / len(texts))

    with_tokens = getattr(embedder, "encode_passages_with_tokens", None)
    if with_tokens is not None:
        vectors, pieces = with_tokens(texts, progress=advance, pieces_of=chunk_count)  # a sentence's come from its chunks
    else:
        vectors, pieces = embedder.encode_passages(texts, progress=advance), None
    meter.finished(chunk_count)
    chunk_row, sentence_row = 0, chunk_count
    now = time.time()
    for doc, chunks, spans in batch:
        record = store.DocumentRecord(
            id=doc.id,
            source=doc.source,
            title=doc.title,
            kind=doc.kind,
            sha256=doc.sha256,
            size=sizes.get(doc.id, len(doc.text.encode("utf-8"))),
            chunks=len(chunks),
            sentences=len(spans),
            indexed_at=now,
        )
        yield store.DocumentBlock(
            record=record,
            chunks=chunks,
            vectors=vectors[chunk_row : chunk_row + len(chunks)],
            sentence_spans=spans,
            sentence_vectors=vectors[sentence_row : sentence_row + len(spans)],
            **(_sentence_pieces(chunks, pieces[chunk_row : chunk_row + len(chunks)], spans) if pieces is not None else {}),
        )
        chunk_row += len(chunks)
        sentence_row += len(spans)


def _sentence_pieces(chunks, pieces, spans: np.ndarray) -> dict:
    """Each sentence's word pieces, from the encodings of the chunks around it: a piece seen in
    two overlapping chunks is kept once, as the first chunk saw it."""
    if any(p is None for p in pieces) or not chunks:
        return {}
    starts = np.concatenate([piece_spans + chunk.start for chunk, (piece_spans, _) in zip(chunks, pieces)])
    codes = np.concatenate([piece_codes for _, piece_codes in pieces])
    _, first = np.unique(starts[:, 0] * (1 << 32) + starts[:, 1], return_index=True)  # sorted by position
    starts, codes = starts[first], codes[first]
    counts = np.zeros(len(spans), np.int64)
    kept = []
    for row, (start, end) in enumerate(spans):
        lo, hi = np.searchsorted(starts[:, 0], [start, end])
        inside = np.arange(lo, hi)[starts[lo:hi, 1] <= end]
        counts[row] = len(inside)
        kept.append(codes[inside])
    return {"sentence_tokens": counts, "token_vectors": np.concatenate(kept) if kept else codes[:0]}


class _Meter:
    """Chunks embedded so far and the expected total, for a progress bar."""

    def __init__(self, progress: Progress | None, total_bytes: int | None) -> None:
        self.progress, self.total_bytes = progress, total_bytes
        self.bytes_read = self.chunks_read = 0
        self.done = 0.0

    def read(self, size: int, chunks: int) -> None:
        self.bytes_read += size
        self.chunks_read += chunks

    def embedded(self, within_batch: float) -> None:
        if self.progress:
            self.progress("embedding", int(self.done + within_batch), self.expected())

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
