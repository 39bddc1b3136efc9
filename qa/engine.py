"""The engine the app, the command line and the tests share: `load(index_dir).ask(question)`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa import reader, store, tokens
from qa.embedder import Embedder, load_embedder
from qa.errors import BadQuestion, IndexNotFound
from qa.retrieval import Retriever
from qa.store import IndexData
from qa.types import Answer, Citation

MAX_QUESTION_CHARS = 2000
READ_PASSAGES = 3  # passages whose sentences compete for the answer
RERANK_PASSAGES = 8  # passages re-ordered by their best sentence
OVERLAP_WEIGHT = 1.0  # a sentence scores cosine + OVERLAP_WEIGHT * overlap + ALIGNMENT_WEIGHT * alignment
ALIGNMENT_WEIGHT = 4.0  # token-level alignment (qa.tokens); sentence accuracy flat from 3 to 6 on both dev articles


@dataclass
class Passage:
    """One cited passage: overlapping chunks of a document merged into a single span."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float
    rows: list[int]
    cosine: float = 0.0  # best cosine of its chunks to the question


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    source: str
    title: str
    text: str | None  # None when the file is gone or unreadable
    stale: bool  # the file changed (or vanished) since it was indexed


class Engine:
    """Answers questions from one loaded index. Safe to share between threads: a question reads
    one index snapshot from start to end, and `reload` swaps the snapshot atomically."""

    def __init__(self, index: IndexData, embedder: Embedder) -> None:
        from threadpoolctl import threadpool_limits

        # numpy's small products here are faster on one thread than fighting ONNX Runtime's
        # threads for the two cores: p95 of a question 19 -> 10 ms on the dev set.
        threadpool_limits(1, user_api="blas")
        self._index = index
        self.embedder = embedder
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, index_dir: str | Path = "index", embedder: Embedder | None = None) -> "Engine":
        index = store.load_index(index_dir)
        return cls(index, embedder or load_embedder(index.model))

    @property
    def index(self) -> IndexData:
        return self._index

    def reload(self) -> bool:
        """Pick up a newer index version written by ingest; True when it changed."""
        with self._reload_lock:
            version = store.current_version(self._index.directory)
            if version is None or version == self._index.version:
                return False
            fresh = store.load_index(self._index.directory)
            if fresh.model.name != self._index.model.name or fresh.model.dimension != self._index.model.dimension:
                self.embedder = load_embedder(fresh.model)
            self._index = fresh
            return True

    def document(self, doc_id: str) -> "DocumentView":
        """The indexed document's current text, re-read from its file, and whether the file
        changed since it was indexed (then offsets into the old text must not be highlighted)."""
        from qa.documents import load_document
        from qa.errors import DocumentError

        record = self._index.documents[doc_id]
        path = Path(record.source)
        try:
            doc = load_document(path, record.id, record.source)
        except (OSError, DocumentError):
            return DocumentView(record.id, record.source, record.title, None, stale=True)
        return DocumentView(record.id, record.source, record.title, doc.text, stale=doc.sha256 != record.sha256)

    def ask(self, question: str, k: int = 5) -> Answer:
        if not isinstance(question, str) or not question.strip():
            raise BadQuestion("The question is empty: type a question about the documents.")
        if not 1 <= k <= 50:
            raise BadQuestion(f"k must be between 1 and 50 (got {k}).")
        question = question.replace("\x00", " ").strip()
        notice = None
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            notice = f"The question was cut to its first {MAX_QUESTION_CHARS:,} characters."
        index = self._index  # one snapshot for the whole question
        if not index.chunks:
            raise IndexNotFound(f"The index in {index.directory}/ is empty: add documents and run `python -m ingest`.")
        timings = {}
        clock = time.perf_counter()
        question_pieces = None
        if index.pieces_kept and hasattr(self.embedder, "encode_query_tokens"):
            query_vector, question_pieces = self.embedder.encode_query_tokens(question)
        else:
            query_vector = self.embedder.encode_queries([question])[0]
        timings["embed"] = _lap(clock)

        clock = time.perf_counter()
        hits = Retriever(index).search(question, query_vector, k=max(k * 3, 10))
        timings["search"] = _lap(clock)

        clock = time.perf_counter()
        passages = _merge(index, hits, max(k, RERANK_PASSAGES))
        sentences = _score_sentences(index, question, query_vector, passages, question_pieces)
        passages = _rerank(passages, sentences)[:k]
        timings["fuse"] = _lap(clock)

        clock = time.perf_counter()
        answer = self._read(index, question, passages, sentences)
        timings["extract"] = _lap(clock)
        return Answer(
            question=question,
            answer=answer["text"],
            confidence=answer["confidence"],
            no_answer=answer["text"] is None,
            citations=tuple(_citations(index, passages, answer)),
            context=answer["context"],
            notice=notice,
            index_version=index.version,
            timings_ms=timings,
            signals=answer.get("features", {}),
        )

    def _read(self, index: IndexData, question: str, passages: list[Passage], sentences: list["Scored"]) -> dict:
        """The best sentence of the best passages, narrowed to the span the question asks for."""
        candidates = [s for s in sentences if s.passage in passages[:READ_PASSAGES]]
        if not candidates:
            return {"text": None, "confidence": 0.0, "context": None, "passage": None}
        lexical = index.lexical
        stems = set(lexical.tokenize(question))
        ranked = sorted(candidates, key=lambda s: -s.score)
        # the best sentence that says something the question does not (not a heading restating it)
        best = next((s for s in ranked if set(lexical.tokenize(s.passage.text[s.start : s.end])) - stems), ranked[0])
        passage = best.passage
        sentence = passage.text[best.start : best.end]
        span = reader.narrow(sentence, question, stems, lambda w: (lexical.tokenize(w) or [w.lower()])[0])
        typed = span is not None and span.kind != "phrase"  # found the date, number or name asked for
        features = {"cosine": best.cosine, "overlap": best.overlap, "passage": passage.cosine, "typed": float(typed)}
        confidence = reader.confidence(features)
        result = {"confidence": confidence, "context": sentence, "passage": passages.index(passage), "features": features}
        if confidence < reader.NO_ANSWER_BELOW or passage.cosine < reader.RELEVANT_FROM:
            return {**result, "text": None}
        start, end = (best.start + span.start, best.start + span.end) if span else (best.start, best.end)
        return {**result, "text": passage.text[start:end], "start": start, "end": end}


@dataclass
class Scored:
    """A sentence of a passage (offsets within the passage text) and how well it matches."""

    passage: Passage
    start: int
    end: int
    cosine: float
    overlap: float
    score: float
    alignment: float = 0.0


def _score_sentences(
    index: IndexData, question: str, query_vector: np.ndarray, passages: list[Passage], question_pieces: np.ndarray | None = None
) -> list[Scored]:
    """Every sentence of the passages, scored by cosine to the question plus the share of the
    question's IDF-weighted content words it holds, plus how well its word pieces align with the
    question's (qa.tokens) when the index keeps them for every one of these sentences."""
    lexical = index.lexical
    idf = lexical.idf(reader.content_stems(question, lexical.tokenize))
    scored = []
    pieces: list[np.ndarray] = []
    for passage in passages:
        passage.cosine = float(np.max(reader.cosine(index.vectors[passage.rows], query_vector)))
        first, last = index.sentence_ranges[passage.doc_id]
        spans = index.sentence_spans[first:last]
        lo = int(np.searchsorted(spans[:, 1], passage.start, side="right")) if len(spans) else 0
        rows = [first + i for i in range(lo, len(spans)) if spans[i, 0] < passage.end]
        if not rows:
            continue
        cosines = reader.cosine(index.sentence_vectors[rows], query_vector)
        for row, cos in zip(rows, cosines):
            start = max(int(index.sentence_spans[row, 0]), passage.start) - passage.start
            end = min(int(index.sentence_spans[row, 1]), passage.end) - passage.start
            text = passage.text[start:end]
            overlap = reader.coverage(set(lexical.tokenize(text)), idf)
            scored.append(Scored(passage, start, end, float(cos), overlap, float(cos) + OVERLAP_WEIGHT * overlap))
            if question_pieces is not None:
                pieces.append(index.sentence_pieces(row))
    if question_pieces is not None and pieces and all(len(p) for p in pieces):  # a sentence without pieces cannot compete
        for sentence, alignment in zip(scored, tokens.alignments(question_pieces, pieces)):
            sentence.alignment = alignment
            sentence.score += ALIGNMENT_WEIGHT * alignment
    return scored


def _rerank(passages: list[Passage], sentences: list[Scored]) -> list[Passage]:
    """Order passages by their best sentence, so the passage that holds the answering sentence is
    cited first (ties keep the retrieval order)."""
    best: dict[int, float] = {}
    for s in sentences:
        best[id(s.passage)] = max(best.get(id(s.passage), -1.0), s.score)
    return sorted(passages, key=lambda p: -best.get(id(p), -1.0))


def _lap(clock: float) -> float:
    return (time.perf_counter() - clock) * 1000


def _merge(index: IndexData, hits, k: int) -> list[Passage]:
    """Top passages in rank order; a chunk overlapping an earlier passage of the same document
    widens that passage instead of being cited twice."""
    passages: list[Passage] = []
    for hit in hits:
        chunk = index.chunks[hit.row]
        for passage in passages:
            if passage.doc_id == chunk.doc_id and chunk.start < passage.end and passage.start < chunk.end:
                if chunk.start < passage.start:
                    passage.text = chunk.text[: passage.start - chunk.start] + passage.text
                    passage.start = chunk.start
                if chunk.end > passage.end:
                    passage.text = passage.text + chunk.text[passage.end - chunk.start :]
                    passage.end = chunk.end
                passage.rows.append(hit.row)
                break
        else:
            if len(passages) < k:
                passages.append(Passage(chunk.doc_id, chunk.start, chunk.end, chunk.text, hit.score, [hit.row]))
    return passages


def _citations(index: IndexData, passages: list[Passage], answer: dict) -> list[Citation]:
    out = []
    for rank, passage in enumerate(passages, 1):
        record = index.documents[passage.doc_id]
        first = index.chunks[min(passage.rows, key=lambda r: index.chunks[r].start)]
        holds_answer = answer.get("text") is not None and answer["passage"] == rank - 1
        out.append(
            Citation(
                rank=rank,
                source=record.source,
                title=record.title,
                page=first.page,
                section=first.section,
                chunk_id=first.id,
                start=passage.start,
                end=passage.end,
                text=passage.text,
                score=passage.score,
                answer_start=answer["start"] if holds_answer else None,
                answer_end=answer["end"] if holds_answer else None,
            )
        )
    return out
