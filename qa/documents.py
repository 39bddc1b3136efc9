"""Loaders: turn a file into a `Document` (extracted text, title, headings, pages).

For .txt and .md the extracted text is the file's decoded text, unchanged, so offsets point
into the file itself. HTML keeps visible text only; PDF keeps text per page.
"""

from __future__ import annotations

import hashlib
import io
import re
from html.parser import HTMLParser
from pathlib import Path

from qa.errors import DocumentError
from qa.types import Document, DocKind, Heading

MAX_DOCUMENT_BYTES = 25 * 2**20  # larger files are skipped: they would take hours to embed here
SUFFIXES: dict[str, DocKind] = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}


def kind_of(path: Path) -> DocKind | None:
    return SUFFIXES.get(path.suffix.lower())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_document(path: Path, doc_id: str, source: str, data: bytes | None = None) -> Document:
    """Load one file. Raises DocumentError with the reason when it cannot be indexed."""
    kind = kind_of(path)
    if kind is None:
        raise DocumentError(f"unsupported file type '{path.suffix or path.name}' (supported: {', '.join(sorted(SUFFIXES))})")
    if data is None:
        data = path.read_bytes()
    if not data.strip():
        raise DocumentError("empty file")
    digest = sha256(data)
    if kind == "pdf":
        text, pages, title = _pdf_text(data)
        headings: tuple[Heading, ...] = ()
    elif kind == "html":
        text, title, headings = _html_text(decode_text(data))
        pages = ()
    else:
        text = decode_text(data)
        headings = _markdown_headings(text) if kind == "md" else _plain_headings(text)
        title = headings[0].text if headings else None
        pages = ()
    if not text.strip():
        raise DocumentError("no text to index")
    return Document(
        id=doc_id,
        source=source,
        kind=kind,
        title=(title or "").strip() or path.name,
        text=text,
        sha256=digest,
        pages=pages,
        headings=headings,
    )


def document_from_text(doc_id: str, text: str, title: str | None = None) -> Document:
    """A document made in memory (evaluation sets, tests): Markdown rules, no file behind it."""
    headings = _markdown_headings(text)
    return Document(
        id=doc_id,
        source=doc_id,
        kind="md",
        title=title or (headings[0].text if headings else doc_id),
        text=text,
        sha256=sha256(text.encode("utf-8")),
        headings=headings,
    )


# --- plain text -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str:
    """UTF-8 (or UTF-16 with a BOM), else Windows-1252; binary data is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DocumentError("not valid UTF-16 text despite its byte-order mark") from None
    if b"\x00" in data:
        raise DocumentError("binary data, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise DocumentError("text in an unknown encoding (not UTF-8 or Windows-1252)") from None
    if len(_CONTROL.findall(text)) > max(8, len(text) // 100):
        raise DocumentError("binary data, not text")
    return text


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def _markdown_headings(text: str) -> tuple[Heading, ...]:
    fences = [m.start() for m in _FENCE.finditer(text)]

    def in_code(offset: int) -> bool:
        return sum(1 for f in fences if f < offset) % 2 == 1

    return tuple(
        Heading(m.start(), len(m.group(1)), m.group(2).strip())
        for m in _ATX.finditer(text)
        if not in_code(m.start())
    )


_LINE = re.compile(r"[^\r\n]+")


def _plain_headings(text: str) -> tuple[Heading, ...]:
    """Plain text has no markup: the first line is the title, and a short line standing alone
    between blank lines with no closing punctuation is taken as a section heading."""
    lines = [(m.start(), m.group()) for m in _LINE.finditer(text) if m.group().strip()]
    if not lines:
        return ()
    first_start, first = lines[0]
    headings = []
    if len(first.strip()) <= 150:
        headings.append(Heading(first_start + len(first) - len(first.lstrip()), 1, first.strip()))
    for start, line in lines[1:]:
        stripped = line.strip()
        before = text[:start].rstrip(" \t")
        after = text[start + len(line):].lstrip(" \t")
        standalone = before.endswith(("\n\n", "\r\n\r\n")) and (after.startswith(("\n\n", "\r\n\r\n")) or not after.strip())
        if standalone and len(stripped) <= 80 and not stripped.endswith((".", ",", ";", ":", "!", "?")):
            headings.append(Heading(start + len(line) - len(line.lstrip()), 2, stripped))
    return tuple(headings)


# --- HTML -------------------------------------------------------------------------------------

_HIDDEN = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "head", "title"}
_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "li", "ul", "ol",
    "table", "tr", "td", "th", "blockquote", "pre", "figure", "figcaption", "dl", "dt", "dd",
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "body", "html",
}
_HEADING = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _VisibleText(HTMLParser):
    """Streams visible text: no tree, so deeply nested markup costs no recursion."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.hidden: list[str] = []  # stack of open hidden elements
        self.title: list[str] = []
        self.in_title = False
        self.headings: list[Heading] = []
        self.heading: tuple[int, int] | None = None  # (level, start) of an open heading
        self.pending_break = False

    def _emit(self, text: str) -> None:
        if self.pending_break and self.length:
            self.parts.append("\n\n")
            self.length += 2
        self.pending_break = False
        self.parts.append(text)
        self.length += len(text)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN and tag not in _VOID:
            self.hidden.append(tag)
            return
        if tag in _BLOCK:
            self.pending_break = True
        if tag in _HEADING and not self.hidden:
            self.heading = (_HEADING[tag], -1)

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCK:
            self.pending_break = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _HIDDEN and tag in self.hidden:
            while self.hidden and self.hidden.pop() != tag:
                pass
            return
        if tag in _BLOCK:
            self.pending_break = True
        if tag in _HEADING and self.heading is not None:
            level, start = self.heading
            if start >= 0:
                text = "".join(self.parts)[start:].strip()
                if text:
                    self.headings.append(Heading(start, level, text))
            self.heading = None

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.hidden:
            return
        text = re.sub(r"\s+", " ", data)
        if not text.strip():
            if self.parts and not self.pending_break and not self.parts[-1].endswith(" "):
                self._emit(" ")
            return
        if self.pending_break or not self.parts or self.parts[-1].endswith((" ", "\n")):
            text = text.lstrip()
        self._emit(text)
        if self.heading is not None and self.heading[1] < 0:
            self.heading = (self.heading[0], self.length - len(text))


def _html_text(markup: str) -> tuple[str, str | None, tuple[Heading, ...]]:
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    raw = "".join(parser.parts)
    # Trailing spaces before paragraph breaks are noise; trim them without moving heading offsets.
    text = raw.rstrip()
    title = " ".join("".join(parser.title).split()) or None
    headings = tuple(h for h in parser.headings if h.start < len(text))
    if title is None and headings:
        title = headings[0].text
    return text, title, headings


# --- PDF --------------------------------------------------------------------------------------

PAGE_SEPARATOR = "\n\n"


def _pdf_text(data: bytes) -> tuple[str, tuple[tuple[int, int], ...], str | None]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:
                opened = 0
            if not opened:
                raise DocumentError("encrypted PDF (it needs a password)")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
        meta = reader.metadata
        title = meta.title if meta is not None and isinstance(meta.title, str) else None
    except DocumentError:
        raise
    except (PdfReadError, Exception) as exc:  # pypdf raises many types for damaged files
        raise DocumentError(f"unreadable PDF ({type(exc).__name__})") from None
    if not any(texts):
        raise DocumentError("PDF has no text layer (scanned images need OCR first)")
    parts, pages, offset = [], [], 0
    for number, page_text in enumerate(texts):
        if number:
            parts.append(PAGE_SEPARATOR)
            offset += len(PAGE_SEPARATOR)
        parts.append(page_text)
        pages.append((offset, offset + len(page_text)))
        offset += len(page_text)
    if not title:
        first_line = next((line.strip() for t in texts for line in t.splitlines() if line.strip()), "")
        title = first_line if len(first_line) <= 150 else None
    return "".join(parts), tuple(pages), title
