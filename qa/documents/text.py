"""Sentence boundaries with character offsets (no model, no network)."""

from __future__ import annotations

import re

# Words after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st jr sr vs etc e.g i.e eg ie c ca cf fig figs no nos vol vols al inc ltd co corp
    dept est approx jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.d b.c p pp ed eds rev gen
    col lt sgt mt ft""".split()
)
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_LINE_BREAK = re.compile(r"\n")


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, shifted by `offset`, whitespace trimmed.

    A line break always ends a sentence (headings, list items, paragraphs); inside a line, a
    full stop ends one unless it follows a known abbreviation or a single initial.
    """
    spans: list[tuple[int, int]] = []
    for line in _lines(text):
        line_start, line_end = line
        start = line_start
        for match in _END.finditer(text, line_start, line_end):
            end = match.end()
            if _is_abbreviation(text, line_start, match.start(), text[match.start()]):
                continue
            nxt = _next_char(text, end, line_end)
            if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'“‘(["):
                continue
            _add(spans, text, start, end, offset)
            start = end
        _add(spans, text, start, line_end, offset)
    return spans


def _lines(text: str) -> list[tuple[int, int]]:
    lines, start = [], 0
    for match in _LINE_BREAK.finditer(text):
        lines.append((start, match.start()))
        start = match.end()
    lines.append((start, len(text)))
    return lines


def _is_abbreviation(text: str, line_start: int, dot: int, mark: str) -> bool:
    if mark != ".":
        return False
    word_start = dot
    while word_start > line_start and (text[word_start - 1].isalnum() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial, as in "George A. Miller"
        return True
    return word in _ABBREVIATIONS


def _next_char(text: str, position: int, limit: int) -> str:
    while position < limit and text[position].isspace():
        position += 1
    return text[position] if position < limit else ""


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int, offset: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and any(ch.isalnum() for ch in text[start:end]):
        spans.append((start + offset, end + offset))

