"""Split documents into overlapping passages with exact character offsets.

langchain-text-splitters decides where to cut; the offsets are computed here by walking the
document in order, never by a global `str.find` (which picks the wrong copy of repeated text).
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.types import Chunk, Document

# Paragraphs, then lines, then sentences, then words: cut at the largest unit that fits.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk size and overlap in characters. 800 characters is about 180 word pieces, inside
    the 256-token window of all-MiniLM-L6-v2, so no passage is truncated when embedded."""

    chunk_size: int = 800
    chunk_overlap: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.chunk_size, int) or self.chunk_size < 50:
            raise ValueError(f"chunk_size must be a whole number of characters >= 50 (got {self.chunk_size!r})")
        if not isinstance(self.chunk_overlap, int) or self.chunk_overlap < 0:
            raise ValueError(f"chunk_overlap must be a whole number >= 0 (got {self.chunk_overlap!r})")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be less than chunk_size (got {self.chunk_overlap} >= {self.chunk_size})"
            )

    def to_json(self) -> dict:
        return {"chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap, "separators": SEPARATORS}


class Chunker:
    def __init__(self, settings: ChunkSettings = ChunkSettings()) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.settings = settings
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """Chunks in document order. PDF pages are split separately so a passage has one page."""
        regions = document.pages or ((0, len(document.text)),)
        chunks: list[Chunk] = []
        for region_start, region_end in regions:
            region = document.text[region_start:region_end]
            for start, end in _locate(region, self._splitter.split_text(region), self.settings.chunk_overlap):
                start, end = start + region_start, end + region_start
                chunks.append(
                    Chunk(
                        id=f"{document.id}#{len(chunks)}",
                        doc_id=document.id,
                        start=start,
                        end=end,
                        text=document.text[start:end],
                        page=document.page_at(start),
                        section=document.section_at(start),
                    )
                )
        return chunks


def _locate(text: str, pieces: list[str], overlap: int) -> list[tuple[int, int]]:
    """Offsets of each piece, in order.

    The splitter carries at most `overlap` characters of a chunk into the next, so the next
    chunk starts at or after `previous end - overlap`: the search starts there, which finds the
    right copy even when the text repeats itself.
    """
    spans: list[tuple[int, int]] = []
    for piece in pieces:
        if not piece:
            continue
        cursor = max(spans[-1][0] + 1, spans[-1][1] - overlap) if spans else 0
        start = text.find(piece, cursor)
        if start < 0:
            raise ValueError(f"splitter returned text that is not in the document: {piece[:60]!r}")
        spans.append((start, start + len(piece)))
    return spans
