"""PDF text that reads as the page does, and where each of its characters sits on its page.

PDFium (through pypdfium2, Apache-2.0 / BSD-3) gives every character with its box, font size and
angle. From them, page by page: lines are rebuilt from the boxes and read column by column;
running headers and footers (the same line in the top or bottom band of most pages), page
numbers and margin stamps (rotated text at the edge, as arXiv's) are left out; compatibility
characters (ligatures, full-width forms) are normalized; a word hyphenated at a line end is
joined unless the document writes it with its hyphen elsewhere; lines in larger type, and a
"References" line, become headings. `extract` can also keep each character's box for chosen
pages, so that a citation can be drawn on its page (`highlight_boxes`).

Memory holds one page's characters at a time, and the text and line outlines of the rest.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from qa.errors import DocumentError
from qa.types import Heading

PAGE_SEPARATOR = "\n\n"
BAND = 0.08  # share of the page height at the top and the bottom where running headers, footers and page numbers sit
REPEATED = 0.4  # a band line on at least this share of the pages (and at least 2) is a running header or footer
HEADING_SIZE = 1.15  # type this much larger than the body's makes a short line a heading
MAX_UNMAPPED = 0.3  # above this share of characters without a Unicode map, the text is nonsense
_COMPATIBLE = ("<compat>", "<noBreak>", "<wide>", "<narrow>")  # NFKC for these only: superscripts and fractions keep their meaning
_PAGE_NUMBER = re.compile(r"^\W*(?:page\s+)?(?:\d{1,4}|[ivxlc]{1,7})(?:\s*(?:/|of)\s*\d{1,4})?\W*$", re.IGNORECASE)
_REFERENCES = re.compile(r"^(?:\d+\.?\s*|[IVX]+\.\s*)?(?:references|bibliography|works cited|literature cited)$", re.IGNORECASE)
_INLINE_HYPHEN = re.compile(r"([^\W\d_]+)-([^\W\d_]+)")
_WORD = re.compile(r"[^\W\d_]+")
_BAD_TITLE = re.compile(r"^(?:untitled|microsoft word\b|document\d*$|arxiv:\d)|\.(?:dvi|docx?|tex|pdf|indd|qxd)$", re.IGNORECASE)  # not a title


@dataclass
class Line:
    """Characters that sit on one baseline, in reading order. `boxes` (left, bottom, right, top
    per character, PDF units) only on pages whose boxes were asked for."""

    text: str
    bbox: tuple[float, float, float, float]
    size: float  # font size
    boxes: np.ndarray | None = None


@dataclass(frozen=True)
class PdfText:
    text: str
    pages: tuple[tuple[int, int], ...]  # (start, end) of each page in `text`
    title: str | None
    headings: tuple[Heading, ...]
    page_sizes: tuple[tuple[float, float], ...]  # width, height in PDF units
    rotations: tuple[int, ...]  # each page's /Rotate, degrees
    boxes: dict[int, np.ndarray] = field(default_factory=dict)  # page index -> box of each of its characters in `text`

    def page_of(self, offset: int) -> int | None:
        """0-based page index holding `offset` (None between pages)."""
        for index, (start, end) in enumerate(self.pages):
            if start <= offset < end:
                return index
        return None


def extract(data: bytes, boxes_for: Iterable[int] | None = ()) -> PdfText:
    """The document's text and pages; raises DocumentError with the reason when it has none.
    `boxes_for`: 0-based pages whose characters' boxes are kept (None: every page)."""
    import pypdfium2 as pdfium

    wanted = set(boxes_for) if boxes_for is not None else None
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
            raise DocumentError("encrypted PDF (it needs a password)") from None
        raise DocumentError(f"unreadable PDF ({exc})") from None
    pages: list[list[Line]] = []
    sizes, rotations = [], []
    unmapped = characters = 0
    try:
        metadata_title = _metadata_title(pdf)
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                width, height = page.get_size()
                sizes.append((float(width), float(height)))
                rotations.append(int(page.get_rotation()))
                lines, bad, count = _page_lines(page, wanted is None or index in wanted)
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"unreadable PDF (page {index + 1}: {exc})") from None
            finally:
                page.close()
            pages.append(lines)
            unmapped += bad
            characters += count
    finally:
        pdf.close()
    if characters and unmapped / characters > MAX_UNMAPPED:
        raise DocumentError("PDF whose fonts have no Unicode map, so its text would be nonsense (it needs OCR)")
    pages = [_reading_order(lines, width) for lines, (width, _) in zip(pages, sizes)]
    _drop_running_lines(pages, [h for _, h in sizes])
    if not any(pages):
        raise DocumentError("PDF has no text layer (scanned images need OCR first)")
    return _assemble(pages, sizes, rotations, metadata_title, wanted if wanted is not None else set(range(len(pages))))


def highlight_boxes(pdf_text: PdfText, start: int, end: int) -> dict[int, list[tuple[float, float, float, float]]]:
    """Rectangles (PDF units) covering `text[start:end]`, one per line it runs over, by page
    index. Only pages whose boxes were kept by `extract` have any."""
    out: dict[int, list[tuple[float, float, float, float]]] = {}
    for index, (page_start, page_end) in enumerate(pdf_text.pages):
        boxes = pdf_text.boxes.get(index)
        lo, hi = max(start, page_start), min(end, page_end)
        if boxes is None or lo >= hi:
            continue
        rects: list[list[float]] = []
        for left, bottom, right, top in boxes[lo - page_start : hi - page_start]:
            if right <= left:  # a space PDFium made up, or a break between lines
                continue
            last = rects[-1] if rects else None
            if last is not None and bottom < last[3] and top > last[1] and left >= last[0] - 1:
                last[0], last[1], last[2], last[3] = min(last[0], left), min(last[1], bottom), max(last[2], right), max(last[3], top)
            else:
                rects.append([left, bottom, right, top])
        out[index] = [tuple(r) for r in rects]
    return out


PASSAGE_FILL = (255, 200, 0, 60)  # RGBA over the page: the cited passage
ANSWER_FILL = (255, 110, 0, 110)  # the answer span, stronger, with an outline
ANSWER_OUTLINE = (214, 72, 0, 255)


def render_page(data: bytes, index: int, layout: PdfText, passage: tuple[int, int] | None = None,
                answer: tuple[int, int] | None = None, scale: float = 1.5) -> bytes:
    """Page `index` as a PNG, with the characters of `passage` and, more strongly, of `answer`
    (offsets into `layout.text`; `layout` from `extract` with this page's boxes) marked."""
    import io

    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    pdf = pdfium.PdfDocument(data)
    try:
        page = pdf[index]
        try:
            image = page.render(scale=scale).to_pil().convert("RGBA")
        finally:
            page.close()
    finally:
        pdf.close()
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    size, rotation = layout.page_sizes[index], layout.rotations[index]
    for span, fill, outline in ((passage, PASSAGE_FILL, None), (answer, ANSWER_FILL, ANSWER_OUTLINE)):
        for rect in highlight_boxes(layout, *span).get(index, []) if span else []:
            draw.rectangle(_pixels(rect, size, rotation, scale), fill=fill, outline=outline, width=2 if outline else 0)
    out = io.BytesIO()
    Image.alpha_composite(image, overlay).convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pixels(rect: tuple[float, float, float, float], size: tuple[float, float], rotation: int, scale: float) -> tuple[float, float, float, float]:
    """A box in PDF units (origin bottom left, before the page's /Rotate) as pixels of the
    rendered page (origin top left, turned as the page is shown)."""
    width, height = size
    left, bottom, right, top = rect
    corners = [(left, bottom), (right, top)]
    turned = {
        0: [(x, height - y) for x, y in corners],
        90: [(y, x) for x, y in corners],
        180: [(width - x, y) for x, y in corners],
        270: [(height - y, width - x) for x, y in corners],
    }[rotation % 360]
    (x0, y0), (x1, y1) = turned
    return min(x0, x1) * scale, min(y0, y1) * scale, max(x0, x1) * scale, max(y0, y1) * scale


# --- one page ---------------------------------------------------------------------------------


def _page_lines(page, keep_boxes: bool) -> tuple[list[Line], int, int]:
    """The page's lines in PDFium's order, the count of characters without a Unicode map, and
    of all characters."""
    import ctypes

    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    try:
        handle = textpage.raw
        count = raw.FPDFText_CountChars(handle)
        rect = raw.FS_RECTF()
        chars: list[tuple[str, float, float, float, float, float, float]] = []  # char, box, size, angle
        unmapped = 0
        for i in range(count):
            code = raw.FPDFText_GetUnicode(handle, i)
            if raw.FPDFText_HasUnicodeMapError(handle, i):
                unmapped += 1
            raw.FPDFText_GetLooseCharBox(handle, i, ctypes.byref(rect))
            generated = raw.FPDFText_IsGenerated(handle, i) == 1
            char = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if generated and char not in "\r\n":
                char = " " if char.isspace() or char == "\x00" else char
            size = raw.FPDFText_GetFontSize(handle, i)
            angle = raw.FPDFText_GetCharAngle(handle, i)
            chars.append((char, rect.left, rect.bottom, rect.right, rect.top, size, angle if not generated else 0.0))
    finally:
        textpage.close()
    rotated = sum(1 for c in chars if _turned(c[6]) and not c[0].isspace())
    visible = sum(1 for c in chars if not c[0].isspace()) or 1
    drop_rotated = rotated / visible < 0.5  # rotated text in a margin or a figure; a wholly rotated page is kept
    lines: list[Line] = []
    current: list[tuple] = []

    def close() -> None:
        if any(not c[0].isspace() for c in current):
            lines.append(_line(current, keep_boxes))
        current.clear()

    for c in chars:
        char = c[0]
        if char in "\r\n":
            close()
            continue
        if drop_rotated and _turned(c[6]):
            continue
        if current and not char.isspace():
            last = next((p for p in reversed(current) if not p[0].isspace()), None)
            if last is not None and _breaks(last, c):
                close()
        current.append(c)
        if char == "\x02":  # PDFium's mark for a hyphen at a line end: the line goes on below
            close()
    close()
    return lines, unmapped, len(chars)


def _turned(angle: float) -> bool:
    """Text set at an angle (radians) of more than about 10 degrees from the horizontal."""
    return 0.17 < angle % (2 * np.pi) < 2 * np.pi - 0.17


def _breaks(last: tuple, char: tuple) -> bool:
    """Whether `char` starts a new line after `last`: another baseline, back to the left, or a
    gap as wide as a column gutter."""
    _, l0, b0, r0, t0, size, _ = last
    _, l1, b1, r1, t1, _, _ = char
    middle = (b1 + t1) / 2
    if not b0 <= middle <= t0:
        return True
    em = max(size, t0 - b0, 1.0)
    return l1 < l0 - em or l1 - r0 > 2.5 * em


def _line(chars: list[tuple], keep_boxes: bool) -> Line:
    while chars and chars[-1][0].isspace():
        chars.pop()
    while chars and chars[0][0].isspace():
        chars.pop(0)
    ink = [c for c in chars if not c[0].isspace()]
    bbox = (min(c[1] for c in ink), min(c[2] for c in ink), max(c[3] for c in ink), max(c[4] for c in ink))
    size = statistics.median(c[5] for c in ink)
    text = "".join("-" if c[0] == "\x02" else c[0] for c in chars)  # PDFium's mark for a hyphen at a line end
    boxes = np.array([c[1:5] for c in chars], dtype=np.float32) if keep_boxes else None
    return Line(text, bbox, size, boxes)


def _reading_order(lines: list[Line], width: float) -> list[Line]:
    """Top to bottom; on a two-column page the left column, then the right, between the lines
    that span both (a title, a wide figure's caption)."""
    if len(lines) < 6:
        return _top_down(lines)
    need = max(3, len(lines) // 5)  # lines on each side of a gutter, for the page to have two columns
    gutter, fewest = None, len(lines)
    for step in range(35, 66):
        x = width * step / 100
        left = sum(1 for line in lines if line.bbox[2] <= x)
        right = sum(1 for line in lines if line.bbox[0] >= x)
        crossing = len(lines) - left - right
        if min(left, right) >= need and crossing < fewest:
            gutter, fewest = x, crossing
    if gutter is None:
        return _top_down(lines)
    ordered: list[Line] = []
    band: list[Line] = []
    for line in sorted(lines, key=lambda line: -line.bbox[3]):
        if line.bbox[0] < gutter < line.bbox[2]:  # spans both columns: ends a band
            ordered += _columns(band, gutter)
            ordered.append(line)
            band = []
        else:
            band.append(line)
    return ordered + _columns(band, gutter)


def _top_down(lines: list[Line]) -> list[Line]:
    """One column: by height on the page, and left to right on the same baseline."""
    return sorted(lines, key=lambda line: (-round((line.bbox[1] + line.bbox[3]) / 6), line.bbox[0]))  # rows of 3 units


def _columns(band: list[Line], gutter: float) -> list[Line]:
    return _top_down([l for l in band if l.bbox[2] <= gutter]) + _top_down([l for l in band if l.bbox[2] > gutter])


def _drop_running_lines(pages: list[list[Line]], heights: list[float]) -> None:
    """Leave out page numbers and lines repeated in the top or bottom band of many pages."""

    def in_band(line: Line, height: float) -> bool:
        return line.bbox[1] >= height * (1 - BAND) or line.bbox[3] <= height * BAND

    def shape(line: Line) -> str:
        return re.sub(r"\d+", "#", " ".join(line.text.lower().split()))

    seen = Counter()
    for lines, height in zip(pages, heights):
        seen.update({shape(line) for line in lines if in_band(line, height)})
    repeated = {s for s, n in seen.items() if n >= max(2, REPEATED * len(pages))}
    for lines, height in zip(pages, heights):
        lines[:] = [
            line for line in lines
            if not (in_band(line, height) and (shape(line) in repeated or _PAGE_NUMBER.match(line.text.strip())))
        ]


# --- the whole document -----------------------------------------------------------------------


def _assemble(pages: list[list[Line]], sizes, rotations, metadata_title: str | None, wanted: set[int]) -> PdfText:
    body = _body_size(pages)
    hyphenated, words = Counter(), Counter()
    for lines in pages:
        for line in lines:
            inner = line.text[:-1] if line.text.endswith("-") else line.text
            hyphenated.update(f"{a}-{b}".lower() for a, b in _INLINE_HYPHEN.findall(inner))
            words.update(w.lower() for w in _WORD.findall(inner))
    parts: list[str] = []
    boxes_out: dict[int, list] = {}
    page_ranges, headings = [], []
    offset = 0
    for index, lines in enumerate(pages):
        if index:
            parts.append(PAGE_SEPARATOR)
            offset += len(PAGE_SEPARATOR)
        start = offset
        keep = index in wanted
        page_boxes: list = []
        previous: Line | None = None
        for line in lines:
            heading = _is_heading(line, body)
            text, line_boxes = _normalized(line)
            if previous is not None:
                joint, unhyphenated = _joint(previous, line, parts, hyphenated, words, heading or _is_heading(previous, body))
                if unhyphenated:
                    offset -= 1
                    if keep:
                        page_boxes.pop()
                if joint:
                    parts.append(joint)
                    offset += len(joint)
                    if keep:
                        page_boxes += [(0.0, 0.0, 0.0, 0.0)] * len(joint)
            if heading and text.strip():
                headings.append(Heading(offset, 2, " ".join(text.split())))
            parts.append(text)
            offset += len(text)
            if keep:
                page_boxes += line_boxes
            previous = line
        page_ranges.append((start, offset))
        if keep:
            boxes_out[index] = np.array(page_boxes, dtype=np.float32).reshape(-1, 4)
    text = "".join(parts)
    headings = [h for h in headings if text[h.start : h.start + len(h.text)] == h.text]
    return PdfText(
        text=text,
        pages=tuple(page_ranges),
        title=metadata_title or _first_page_title(pages, body) or _first_line(text),
        headings=tuple(headings),
        page_sizes=tuple(sizes),
        rotations=tuple(rotations),
        boxes=boxes_out,
    )


def _normalized(line: Line) -> tuple[str, list]:
    """The line's text with compatibility characters normalized, and a box per character (an
    expanded ligature's letters share its box)."""
    out, boxes = [], []
    for position, char in enumerate(line.text):
        if char == "\u00ad":  # a soft hyphen is not text
            continue
        if unicodedata.decomposition(char).startswith(_COMPATIBLE):
            char = unicodedata.normalize("NFKC", char)
        out.append(char)
        if line.boxes is not None:
            boxes += [tuple(line.boxes[position])] * len(char)
    return "".join(out), boxes


def _joint(previous: Line, line: Line, parts: list[str], hyphenated: Counter, words: Counter, heading: bool) -> tuple[str, bool]:
    """What goes between two lines: a blank line between paragraphs, a newline within one, or
    nothing after a hyphen at the line end; and whether that hyphen split a word, so that it was
    taken off `parts[-1]` ("convo-" "lutional"). A hyphen the document writes elsewhere stays
    ("self-" "attention"), as does one before a capital or a digit ("ResNet-" "50")."""
    if heading or _paragraph_gap(previous, line):
        return "\n\n", False
    last = parts[-1]
    if last.endswith("-") and len(last) > 1 and last[-2].isalpha() and line.text[:1].isalnum():
        first = _WORD.findall(last[:-1])[-1]
        second = _WORD.match(line.text)
        if line.text[0].islower() and second and hyphenated[f"{first}-{second.group()}".lower()] <= words[(first + second.group()).lower()]:
            parts[-1] = last[:-1]
            return "", True
        return "", False
    return "\n", False


def _paragraph_gap(previous: Line, line: Line) -> bool:
    """A vertical gap of more than about a line's height, in the same column and below it."""
    gap = previous.bbox[1] - line.bbox[3]
    return gap > 0.9 * max(previous.size, line.size, 1.0) and line.bbox[3] < previous.bbox[1]


def _body_size(pages: list[list[Line]]) -> float:
    sizes = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size, 1)] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _is_heading(line: Line, body: float) -> bool:
    text = line.text.strip()
    if _REFERENCES.match(text):
        return True
    return bool(body) and line.size >= HEADING_SIZE * body and len(text.split()) <= 15 and not text.endswith((".", ",", ";"))


def _first_page_title(pages: list[list[Line]], body: float) -> str | None:
    """The largest type on the first page with text, in its top half (consecutive lines joined)."""
    for lines in pages:
        if not lines:
            continue
        top = max(line.bbox[3] for line in lines)
        bottom = min(line.bbox[1] for line in lines)
        candidates = [line for line in lines if line.bbox[1] >= (top + bottom) / 2 and line.text.strip()]
        if not candidates:
            return None
        largest = max(line.size for line in candidates)
        if largest < HEADING_SIZE * body:
            return None
        title = " ".join(" ".join(line.text.split()) for line in candidates if line.size >= largest * 0.98)
        return title if len(title) <= 200 else None
    return None


def _first_line(text: str) -> str | None:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 150 else None


def _metadata_title(pdf) -> str | None:
    try:
        title = (pdf.get_metadata_value("Title") or "").strip()
    except Exception:  # damaged metadata is no reason to refuse the text
        return None
    if not title or len(title) > 200 or not any(c.isalpha() for c in title) or _BAD_TITLE.search(title):
        return None
    return " ".join(title.split())
