"""PDFs the tests make, laid out like conference papers, and a comparison of extractors on them.

`paper(path)` draws a two-column paper line by line with fpdf2: a title in large type, a
running header and a page number on every page, an arXiv-style stamp turned 90 degrees in the
left margin, words with ligature characters (U+FB01, U+FB02, U+FB00), words hyphenated at line
ends, a compound whose hyphen falls at a line end, a heading, and a References section. The
two columns are drawn interleaved, a line of the left then a line of the right, so a reader
that follows the drawing order mixes them. It returns what was drawn where, for the checks.

`python -m tests.pdf_samples` prints, per extractor, how much of that layout noise reaches the
text: pypdf (before), pypdfium2's plain text, pdfplumber when installed, and qa.documents.pdf
(after).
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
]
TITLE = "Learning Visual Categories from Many Labelled Images"
HEADER = "Proceedings of the Workshop on Test Documents 2026"
STAMP = "arXiv:2601.01234v2 [cs.CV] 5 Jan 2026"
HYPHENATED = {"convolutional": "convolu", "representations": "representa", "classification": "classifi", "hierarchy": "hier"}
COMPOUND = "pre-training"  # written with its hyphen in the text, and once broken at a line end on it
LIGATURES = {"classification": "classi\ufb01cation", "effective": "e\ufb00ective", "workflow": "work\ufb02ow"}
PAGE_W, PAGE_H = 210.0, 297.0  # mm, A4
COLUMN_W = 85.0
LEFT_X, RIGHT_X = 15.0, 110.0
TOP_Y, BOTTOM_Y, LINE_H = 30.0, 272.0, 4.6
MM = 72 / 25.4  # PDF units per millimetre


def font_path() -> str | None:
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


def sentences(count: int) -> list[str]:
    """Numbered sentences, so that reading order can be checked: "Sentence 7 ..." comes after 6."""
    subjects = ["The convolutional network", "A hierarchy of categories", "Effective representations", "The classification workflow",
                "Our pre-training stage", "The labelled images"]
    verbs = ["improves the accuracy of", "depends on the quality of", "was measured against", "scales with the size of"]
    objects = ["the validation set", "the convolutional features", "a large hierarchy of synsets", "effective representations of objects"]
    return [f"Sentence {n} says that {subjects[n % 6].lower()} {verbs[n % 4]} {objects[(n // 2) % 4]}." for n in range(1, count + 1)]


@dataclass
class Drawn:
    pages: int = 0
    columns: list[list[str]] = field(default_factory=list)  # per page: the text of each column, as drawn
    anchors: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # word -> (page, x, y) in mm, top-left origin
    references_start: str = ""


def _wrap(words: list[str], width: float, measure) -> list[str]:
    """Lines of at most `width` mm; a word from HYPHENATED that does not fit is split at its
    hyphen point, and the compound is broken at its own hyphen when it falls at a line end."""
    lines, current = [], ""
    for word in words:
        trial = f"{current} {word}".strip()
        if measure(_shown(trial)) <= width:
            current = trial
            continue
        bare = word.strip(".,")
        if bare in HYPHENATED and current:
            head = f"{current} {HYPHENATED[bare]}-"
            if measure(_shown(head)) <= width:
                lines.append(head)
                current = word[len(HYPHENATED[bare]):]
                continue
        if bare == COMPOUND and current and measure(_shown(f"{current} pre-")) <= width:
            lines.append(f"{current} pre-")
            current = word[len("pre-"):]
            continue
        lines.append(current)
        current = word
    if current:
        lines.append(current)
    return lines


def _shown(text: str) -> str:
    """The text as drawn: the ligature characters a typesetter would use."""
    for plain, ligature in LIGATURES.items():
        text = text.replace(plain, ligature)
    return text


def paper(path: Path, pages: int = 3, per_column: int = 9, title_in_metadata: bool = False, lead: str = "") -> Drawn:
    """Draw the paper at `path`; `lead` is a sentence put first, at the top of the left column."""
    from fpdf import FPDF

    font = font_path()
    if font is None:
        raise RuntimeError("no TrueType font with ligatures found (install fonts-dejavu-core)")
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("Body", "", font)
    if title_in_metadata:
        pdf.set_title(TITLE)
    drawn = Drawn(pages=pages)
    numbered = iter(sentences(pages * per_column * 2 + 4))
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Body", size=8)
        pdf.text(PAGE_W / 2 - pdf.get_string_width(HEADER) / 2, 12, HEADER)
        pdf.text(PAGE_W / 2 - 2, 288, str(number))
        with pdf.rotation(90, x=8, y=200):
            pdf.text(8, 200, STAMP)
        y = TOP_Y
        if number == 1:
            pdf.set_font("Body", size=17)
            pdf.text(LEFT_X, 22, TITLE)
        pdf.set_font("Body", size=9.5)
        measure = pdf.get_string_width
        texts = [" ".join(next(numbered) for _ in range(per_column)) for _ in range(2)]
        if number == 1 and lead:
            texts[0] = f"{lead} {texts[0]}"
        if number == pages:  # the last page's right column is the references
            texts[1] = "References\n" + "\n".join(f"[{i}] A. Author{i}. A paper on labelled images, {2000 + i}." for i in range(1, 6))
        columns = [_wrap(texts[0].split(), COLUMN_W, measure), []]
        for block in texts[1].split("\n"):
            columns[1] += _wrap(block.split(), COLUMN_W, measure) if not block.startswith("References") else ["References"]
        drawn.columns.append(texts)
        for row in range(max(len(c) for c in columns)):  # interleaved: left line, right line, ...
            for x, lines in ((LEFT_X, columns[0]), (RIGHT_X, columns[1])):
                if row < len(lines):
                    line = lines[row]
                    if line == "References":
                        pdf.set_font("Body", size=12)
                        drawn.references_start = "[1] A. Author1"
                    pdf.text(x, y, _shown(line))
                    pdf.set_font("Body", size=9.5)
                    for word in ("Sentence",):
                        if line.startswith(word) and word + f"@{number}" not in drawn.anchors:
                            drawn.anchors[word + f"@{number}"] = (number, x, y)
            y += LINE_H
            if y > BOTTOM_Y:
                break
    pdf.output(str(path))
    return drawn


# --- the comparison ---------------------------------------------------------------------------


def noise(text: str, drawn: Drawn) -> dict[str, int]:
    """Layout noise in extracted `text`, counted the same way for every extractor."""
    order = [int(n) for n in re.findall(r"Sentence (\d+)", text)]
    return {
        "ligature characters": len(re.findall("[\ufb00-\ufb06]", text)),
        "words split at a line end": sum(len(re.findall(rf"\b{stem}-\s", text)) + len(re.findall(rf"\b{stem}\s+\w", text)) for stem in HYPHENATED.values()),
        "running header lines": text.count(HEADER),
        "page number lines": len(re.findall(r"(?m)^\s*\d{1,3}\s*$", text)),
        "margin stamps": text.count("arXiv:"),
        "sentences out of order": sum(1 for a, b in zip(order, order[1:]) if b < a),
    }


def _pypdf(path: Path) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def _pdfium_plain(path: Path) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    return "\n\n".join(page.get_textpage().get_text_range() for page in pdf)


def _pdfplumber(path: Path) -> str:
    import pdfplumber

    with pdfplumber.open(str(path)) as pdf:
        return "\n\n".join(page.extract_text() or "" for page in pdf.pages)


def _ours(path: Path) -> str:
    from qa.documents.pdf import extract

    return extract(path.read_bytes()).text


def compare() -> str:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "paper.pdf"
        drawn = paper(path)
        rows = {}
        for name, extractor in [("pypdf (before)", _pypdf), ("pypdfium2 get_text_range", _pdfium_plain), ("pdfplumber", _pdfplumber), ("qa.documents.pdf (after)", _ours)]:
            try:
                rows[name] = noise(extractor(path), drawn)
            except ImportError:
                rows[name] = None
    kinds = list(next(r for r in rows.values() if r))
    width = max(map(len, kinds))
    lines = [f"{'on the test paper (3 pages, 2 columns)':<{width}}  " + "  ".join(f"{n:>24}" for n in rows)]
    for kind in kinds:
        lines.append(f"{kind:<{width}}  " + "  ".join(f"{(r[kind] if r else 'not installed'):>24}" for r in rows.values()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(print(compare()))
