"""The typed values that cross module boundaries. Offsets are fields, never metadata keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DocKind = Literal["txt", "md", "html", "pdf"]


@dataclass(frozen=True)
class Heading:
    start: int  # character offset of the heading in the document text
    level: int
    text: str


@dataclass(frozen=True)
class Document:
    """A loaded document. `text` is what offsets point into: for .txt/.md, the file's decoded text."""

    id: str  # path relative to the indexed root, with forward slashes
    source: str  # the path as given at ingest time, e.g. corpus/alexnet.md
    kind: DocKind
    title: str
    text: str
    sha256: str  # of the file's bytes
    pages: tuple[tuple[int, int], ...] = ()  # PDF only: (start, end) of each page in `text`
    headings: tuple[Heading, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding `offset`, or None for documents without pages."""
        for number, (start, end) in enumerate(self.pages, 1):
            if start <= offset < end:
                return number
        return None

    def section_at(self, offset: int) -> str | None:
        """Text of the nearest heading at or before `offset`."""
        section = None
        for heading in self.headings:
            if heading.start > offset:
                break
            section = heading.text
        return section


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: `document.text[start:end] == text` always holds."""

    id: str  # "<doc id>#<ordinal>", stable for the same document content
    doc_id: str
    start: int
    end: int
    text: str
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk (row in the index) with its fused score, its exact cosine to the
    question and its per-retriever ranks."""

    row: int
    score: float
    cosine: float
    dense_rank: int | None = None
    lexical_rank: int | None = None


@dataclass(frozen=True)
class Citation:
    rank: int
    source: str
    title: str
    page: int | None
    section: str | None
    chunk_id: str
    start: int  # offsets in the document's extracted text
    end: int
    text: str
    score: float
    answer_start: int | None = None  # within `text`, for the passage the answer comes from
    answer_end: int | None = None
    stale: bool = False  # the document changed on disk since it was indexed

    @property
    def doc_id(self) -> str:
        """The cited document's id (a chunk id is the document's id, '#', the chunk's number)."""
        return self.chunk_id.rsplit("#", 1)[0]


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None
    confidence: float
    no_answer: bool
    citations: tuple[Citation, ...] = ()
    context: str | None = None  # the sentence the answer was lifted from
    notice: str | None = None  # e.g. "the question was cut to 2,000 characters"
    index_version: str | None = None
    read_as: str | None = None  # the question as read, when the conversation filled it in (qa.conversation)
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    signals: dict[str, float] = field(default_factory=dict, compare=False)  # what the confidence is computed from

    NO_ANSWER_TEXT = "The indexed documents don't seem to answer this."

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "no_answer": self.no_answer,
            "read_as": self.read_as,
            "citations": [
                {
                    "rank": c.rank,
                    "source": c.source,
                    "title": c.title,
                    "page": c.page,
                    "section": c.section,
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                    "score": round(c.score, 6),
                    "answer_start": c.answer_start,
                    "answer_end": c.answer_end,
                }
                for c in self.citations
            ],
        }
