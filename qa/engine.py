"""The engine the app, the command line and the tests share: `load(index_dir).ask(question)`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from qa import store
from qa.conversation import Turn, resolve
from qa.embedder import Embedder, load_embedder
from qa.errors import BadQuestion, IndexNotFound
from qa.reader import Reader
from qa.retrieval import Retriever
from qa.store import IndexData
from qa.documents.text import split_sentences
from qa.types import Answer, Citation

MAX_QUESTION_CHARS = 2000
READ_PASSAGES = 3  # passages the reader reads; the answer is the best-supported span over all of them
RELEVANT_FROM = 0.25  # below this cosine to every passage read, the documents are off the topic: no answer
# A passage's prior, in reader margin points: RELEVANCE_WEIGHT per unit of cosine (to the question)
# that it is less close than the closest passage read. Relative, so the closest passage's spans keep
# their margins and the no-answer margin does not move with how close a collection's passages are.
RELEVANCE_WEIGHT = 20.0


@dataclass
class Passage:
    """One cited passage: overlapping chunks of a document merged into a single span."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float
    closeness: float  # the highest cosine to the question of its chunks
    rows: list[int]


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

    def __init__(self, index: IndexData, embedder: Embedder, reader: Reader | None = None) -> None:
        from threadpoolctl import threadpool_limits

        # numpy's small products here are faster on one thread than fighting ONNX Runtime's
        # threads for the two cores: p95 of a question 19 -> 10 ms on the dev set.
        threadpool_limits(1, user_api="blas")
        self._index = index
        self.embedder = embedder
        self.reader = reader or Reader()
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, index_dir: str | Path = "index", embedder: Embedder | None = None, reader: Reader | None = None) -> "Engine":
        index = store.load_index(index_dir)
        engine = cls(index, embedder or load_embedder(index.model), reader)
        engine.reader.warm_up()  # a missing or damaged reader is said now, not at the first question
        return engine

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

    def ask(self, question: str, k: int = 5, history: Iterable[Turn] | None = None) -> Answer:
        """Answer `question`; `history`, the conversation's earlier turns (oldest first), fills
        in what a follow-up leaves out (qa.conversation), and the answer says how it was read."""
        if not isinstance(question, str) or not question.strip():
            raise BadQuestion("The question is empty: type a question about the documents.")
        if not 1 <= k <= 50:
            raise BadQuestion(f"k must be between 1 and 50 (got {k}).")
        question = question.replace("\x00", " ").strip()
        notice = None
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            notice = f"The question was cut to its first {MAX_QUESTION_CHARS:,} characters."
        asked = question
        resolved = resolve(question, history)
        question = resolved.question
        index = self._index  # one snapshot for the whole question
        if not index.chunks:
            raise IndexNotFound(f"The index in {index.directory}/ is empty: add documents and run `python -m ingest`.")
        timings = {}
        clock = time.perf_counter()
        query_vector = self.embedder.encode_queries([question])[0]
        timings["embed"] = _lap(clock)

        clock = time.perf_counter()
        hits = Retriever(index).search(question, query_vector, k=max(k * 3, 10))
        passages = _merge(index, hits, max(k, READ_PASSAGES))
        timings["search"] = _lap(clock)

        clock = time.perf_counter()
        read = passages[:READ_PASSAGES]
        closest = max((p.closeness for p in read), default=-1.0)
        priors = [RELEVANCE_WEIGHT * (p.closeness - closest) for p in read]
        reading = self.reader.extract(question, [p.text for p in read], priors)
        timings["read"] = _lap(clock)
        if reading.question != question and notice is None:
            notice = f"The question is longer than the reader reads: the answer was found for its first {len(reading.question):,} characters."
        # The passages read are cited in the order of their best support, so the answer's is first.
        order = sorted(range(len(read)), key=lambda i: -reading.passage_scores[i])
        passages = [read[i] for i in order] + passages[READ_PASSAGES:]
        passages = passages[:k]
        best = reading.best
        relevant = closest >= RELEVANT_FROM
        holder = read[best.passage] if best is not None else None
        at = next((i for i, p in enumerate(passages) if p is holder), None)
        answered = reading.answered and relevant and at is not None
        context = _sentence_around(holder.text, best.start, best.end) if best is not None else None
        return Answer(
            question=asked,
            answer=best.text if answered else None,
            confidence=best.confidence if best is not None and relevant else 0.0,
            no_answer=not answered,
            citations=tuple(_citations(index, passages, (at, best.start, best.end) if answered else None)),
            context=context,
            notice=notice,
            index_version=index.version,
            timings_ms=timings,
            signals={"support": best.support, "margin": best.margin, "score": best.score} if best is not None else {},
            read_as=question if resolved.carried is not None else None,
        )


def _sentence_around(text: str, start: int, end: int) -> str:
    """The sentences of `text` that the span [start, end) falls in."""
    spans = [(a, b) for a, b in split_sentences(text) if a < end and start < b] or [(start, end)]
    return text[min(spans[0][0], start) : max(spans[-1][1], end)]


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
                passage.closeness = max(passage.closeness, hit.cosine)
                break
        else:
            if len(passages) < k:
                passages.append(Passage(chunk.doc_id, chunk.start, chunk.end, chunk.text, hit.score, hit.cosine, [hit.row]))
    return passages


def _citations(index: IndexData, passages: list[Passage], answer: tuple[int, int, int] | None) -> list[Citation]:
    """The passages as citations; `answer` is (passage, start, end) of the answer's span."""
    out = []
    for rank, passage in enumerate(passages, 1):
        record = index.documents[passage.doc_id]
        first = index.chunks[min(passage.rows, key=lambda r: index.chunks[r].start)]
        holds_answer = answer is not None and answer[0] == rank - 1
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
                answer_start=answer[1] if holds_answer else None,
                answer_end=answer[2] if holds_answer else None,
            )
        )
    return out
