"""Loaders: turn a file into a `Document` (extracted text, title, headings, pages).

For .txt and .md the extracted text is the file's decoded text, unchanged, so offsets point
into the file itself. HTML keeps the visible text of the page's content (navigation, page
header and footer, sidebars and banners left out; table rows as "cell | cell" lines); PDF text
comes from qa.documents.pdf, page by page.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

from qa.errors import DocumentError
from qa.types import Document, DocKind, Heading

MAX_DOCUMENT_BYTES = 25 * 2**20  # larger files are skipped: they would take hours to embed here
SUFFIXES: dict[str, DocKind] = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}


def kind_of(path: Path) -> DocKind | None:
    return SUFFIXES.get(path.suffix.lower())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_version(files: Iterable[Path], packages: Iterable[str], root: Path) -> str:
    """SHA-256 over source files (each by its path under `root` and its bytes) and the installed
    versions of `packages`: a version of the code that decides some result."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for package in packages:
        digest.update(f"{package}=={importlib.metadata.version(package)}\0".encode())
    return digest.hexdigest()


@functools.cache
def loaders_version() -> str:
    """What decides whether a file can be loaded: the code of this module and of
    qa.documents.pdf, and the PDF library's version. A file skipped for what it holds is read
    again once this changes."""
    here = Path(__file__)
    return code_version([here, here.with_name("pdf.py")], ["pypdfium2"], here.parent)[:16]


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
        from qa.documents.pdf import extract

        extracted = extract(data)
        text, pages, title, headings = extracted.text, extracted.pages, extracted.title, extracted.headings
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
_HEADING = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

# Separators owed before the next text, weakest first; the strongest one owed wins.
_SPACE, _CELL, _ROW, _PARAGRAPH = 1, 2, 3, 4
_SEPARATORS = {_SPACE: " ", _CELL: " | ", _ROW: "\n", _PARAGRAPH: "\n\n"}
_BREAKS = dict.fromkeys(
    ("p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "li", "ul", "ol",
     "table", "blockquote", "pre", "figure", "figcaption", "dl", "dt", "dd",
     "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "body", "html"),
    _PARAGRAPH,
) | {"caption": _ROW, "tr": _ROW, "td": _CELL, "th": _CELL}
_TABLE_PARTS = {"table", "caption", "tr", "td", "th"}

# Boilerplate: what an element is (tag, ARIA role, class or id words), never which site it is on.
_BOILERPLATE_ROLES = {"navigation", "contentinfo", "search", "complementary"}
_BOILERPLATE_NAMES = {
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "footer", "sidebar", "cookie", "cookies",
    "skiplink", "share", "sharing", "social", "ad", "ads", "advert", "adverts", "advertisement",
}
_CONTENT_NAMES = {"content", "article", "post", "entry", "story"}  # outweigh boilerplate words: "entry-footer"
_CONTENT_TAGS = {"html", "body", "main", "article"}  # never boilerplate by class or id ("has-sidebar")


def _names(*values: str | None) -> set[str]:
    """Words of class and id values: each token's parts ("site-nav", "mainNav": "nav") and the
    token with its separators dropped ("skip-link": "skiplink")."""
    names = set()
    for token in " ".join(v for v in values if v).split():
        parts = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", token).lower())
        names.update(parts)
        names.add("".join(parts))
    return names


class _VisibleText(HTMLParser):
    """Streams visible text: no tree, so deeply nested markup costs no recursion. A stack of open
    elements (each with whether text inside it is hidden or boilerplate) lets an end tag close what
    it matches and nothing else: a stray one closes nothing, and an unclosed one ends with its parent."""

    def __init__(self, skip_boilerplate: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_boilerplate = skip_boilerplate
        self.parts: list[str] = []
        self.length = 0
        self.stack: list[tuple[str, bool, bool]] = []  # open elements: (tag, hidden, boilerplate)
        self.open: dict[str, list[int]] = {}  # tag -> stack positions of its open elements
        self.title: list[str] = []
        self.in_title = False
        self.headings: list[Heading] = []
        self.heading: tuple[int, int, int] | None = None  # open heading: (level, start, first part), -1 before its text
        self.pending = 0  # separator owed before the next text

    def _skipping(self) -> bool:
        return bool(self.stack) and (self.stack[-1][1] or self.stack[-1][2])

    def _last(self, *tags: str) -> int:
        """Stack position of the innermost open element among `tags`, -1 if none is open."""
        return max((self.open[t][-1] for t in tags if self.open.get(t)), default=-1)

    def _pop_to(self, position: int) -> None:
        while len(self.stack) > position:
            self.open[self.stack.pop()[0]].pop()

    def _push(self, tag: str, attrs: dict[str, str | None]) -> None:
        hidden, boilerplate = self.stack[-1][1:] if self.stack else (False, False)
        if tag == "body":
            hidden = boilerplate = False  # an unclosed <head> ends where the body starts
        elif tag == "main":
            boilerplate = False  # the main content is never boilerplate, whatever wraps it
        hidden = hidden or tag in _HIDDEN
        boilerplate = boilerplate or (self.skip_boilerplate and self._is_boilerplate(tag, attrs))
        self.open.setdefault(tag, []).append(len(self.stack))
        self.stack.append((tag, hidden, boilerplate))

    def _is_boilerplate(self, tag: str, attrs: dict[str, str | None]) -> bool:
        roles = set((attrs.get("role") or "").lower().split())
        if tag in ("nav", "aside") or roles & _BOILERPLATE_ROLES:
            return True
        names = _names(attrs.get("class"), attrs.get("id"))
        if names & _CONTENT_NAMES:
            return False
        if tag in ("header", "footer") or "banner" in roles:
            return self._last("article", "main", "section") < 0  # the page's own, not an article's
        return tag not in _CONTENT_TAGS and bool(names & _BOILERPLATE_NAMES)

    def _break(self, tag: str) -> None:
        level = _BREAKS.get(tag, 0)
        if tag not in _TABLE_PARTS and self._last("td", "th") > self._last("table"):
            level = min(level, _SPACE)  # inside a table cell, blocks only separate words
        self.pending = max(self.pending, level)

    def _emit(self, text: str) -> None:
        if self.pending and self.length:
            separator = _SEPARATORS[self.pending]
            self.parts.append(separator)
            self.length += len(separator)
        self.pending = 0
        if self.heading is not None and self.heading[1] < 0:
            self.heading = (self.heading[0], self.length, len(self.parts))
        self.parts.append(text)
        self.length += len(text)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title" and not self.title:
            self.in_title = True  # the page's title, not an <svg>'s
        if tag in ("td", "th") and self._last("td", "th") > self._last("tr", "table"):
            self._pop_to(self._last("td", "th"))  # a cell left open ends where the next one starts
        elif tag == "tr" and self._last("tr") > self._last("table"):
            self._pop_to(self._last("tr"))
        self._break(tag)
        if tag not in _VOID:
            self._push(tag, dict(attrs))
        if tag in _HEADING and not self._skipping():
            self.heading = (_HEADING[tag], -1, -1)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self._break(tag)  # <br/>, <div/>: nothing stays open

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.open.get(tag):
            self._pop_to(self.open[tag][-1])
        self._break(tag)
        if tag in _HEADING and self.heading is not None:
            level, start, first = self.heading
            if start >= 0:
                self.headings.append(Heading(start, level, "".join(self.parts[first:])))
            self.heading = None

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self._skipping():
            return
        if data[:1].isspace():
            self.pending = max(self.pending, _SPACE)
        text = " ".join(data.split())
        if text:
            self._emit(text)
        if data[-1:].isspace():
            self.pending = max(self.pending, _SPACE)


def _html_text(markup: str) -> tuple[str, str | None, tuple[Heading, ...]]:
    """Visible text (separators are only written before more text, so nothing trails), title and
    headings. Boilerplate is left out, unless that leaves no text at all (a page that is all menu)."""
    for skip_boilerplate in (True, False):
        parser = _VisibleText(skip_boilerplate)
        parser.feed(markup)
        parser.close()
        if parser.parts:
            break
    title = " ".join("".join(parser.title).split()) or None
    headings = tuple(parser.headings)
    if title is None and headings:
        title = headings[0].text
    return "".join(parser.parts), title, headings
