"""PDF extraction (issue 15) on PDFs the tests draw like conference papers (tests/pdf_samples.py):
the text reads as the page does, and every character maps back to its page and its box."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa.documents.chunking import Chunker
from qa.documents import load_document
from qa.errors import DocumentError
from qa.documents.pdf import extract, highlight_boxes
from tests import pdf_samples
from tests.conftest import ROOT
from tests.pdf_samples import COMPOUND, HEADER, HYPHENATED, MM, PAGE_H, STAMP, TITLE

pytestmark = pytest.mark.skipif(pdf_samples.font_path() is None, reason="no TrueType font with ligatures here (fonts-dejavu-core)")


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "paper.pdf"
    drawn = pdf_samples.paper(path)
    return path, drawn, load_document(path, "paper.pdf", path.as_posix())


def drawn_text(drawn) -> str:
    return " ".join(" ".join(columns) for columns in drawn.columns)


def test_ligatures_are_letters_and_line_end_hyphens_are_joined(paper):
    path, drawn, doc = paper
    assert not re.search("[\ufb00-\ufb06]", doc.text)
    for word in ["classification", "effective", "workflow", "convolutional", "representations", "hierarchy"]:
        assert doc.text.count(word) == drawn_text(drawn).count(word), word
    for stem in HYPHENATED.values():
        assert not re.search(rf"\b{stem}(-\s|\s)", doc.text), stem
    assert doc.text.count(COMPOUND) == drawn_text(drawn).count(COMPOUND)  # its hyphen kept where a line breaks on it
    assert "pre-\n" not in doc.text and "pretraining" not in doc.text


def test_running_headers_page_numbers_and_margin_stamps_are_left_out(paper):
    path, drawn, doc = paper
    assert HEADER not in doc.text and "arXiv" not in doc.text and STAMP.split()[-1] + "\n" not in doc.text
    assert not re.search(r"(?m)^\s*\d{1,3}\s*$", doc.text)
    assert doc.title == TITLE  # the largest type, never the stamp


def test_two_columns_are_read_column_by_column(paper):
    path, drawn, doc = paper
    numbers = [int(n) for n in re.findall(r"Sentence (\d+)", doc.text)]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers)) == drawn_text(drawn).count("Sentence ")


def test_the_references_are_indexed_as_their_own_section(paper):
    path, drawn, doc = paper
    at = doc.text.index(drawn.references_start)
    assert doc.section_at(at) == "References"
    assert doc.section_at(doc.text.index("Sentence 3 ")) == TITLE
    chunks = Chunker().split(doc)
    assert any(c.section == "References" and drawn.references_start in c.text for c in chunks)


def test_every_character_maps_to_its_page_and_its_place_on_the_page(paper):
    path, drawn, doc = paper
    pages = extract(path.read_bytes(), boxes_for=range(drawn.pages))
    assert pages.text == doc.text and pages.pages == doc.pages
    for index, (start, end) in enumerate(pages.pages):
        assert len(pages.boxes[index]) == end - start  # a box (or an empty one, for a line break) per character
    for key, (page, x, y) in drawn.anchors.items():  # the first "Sentence" drawn in each column's first line
        start, end = pages.pages[page - 1]
        hits = [m.start() for m in re.finditer("Sentence", doc.text[start:end])]
        boxes = pages.boxes[page - 1]
        drawn_at = (x * MM, (PAGE_H - y) * MM)  # fpdf2 draws from a top-left origin in mm
        assert any(abs(boxes[h][0] - drawn_at[0]) < 1.5 and boxes[h][1] <= drawn_at[1] <= boxes[h][3] for h in hits), key
    for chunk in Chunker().split(doc):
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.page == pages.page_of(chunk.start) + 1 == pages.page_of(chunk.end - 1) + 1


def test_a_passage_is_highlighted_line_by_line_in_its_column(paper):
    path, drawn, doc = paper
    pages = extract(path.read_bytes(), boxes_for=[1])
    start = doc.text.index("Sentence 21 ")
    end = doc.text.index(".", start) + 1
    rects = highlight_boxes(pages, start, end)
    lines = doc.text[start:end].count("\n") + 1  # a word joined across a line end adds a line on the page
    assert list(rects) == [1] and len(rects[1]) >= lines >= 2
    column = pdf_samples.RIGHT_X * MM if rects[1][0][0] > pdf_samples.RIGHT_X * MM - 5 else pdf_samples.LEFT_X * MM
    for left, bottom, right, top in rects[1]:
        assert column - 1 <= left < right <= column + pdf_samples.COLUMN_W * MM + 2 and bottom < top
    for upper, lower in zip(rects[1], rects[1][1:]):  # one rectangle per line, top to bottom
        assert lower[3] <= upper[1] + 0.5
    assert highlight_boxes(pages, *doc.pages[0]) == {}  # boxes were kept for page 2 only


def test_fonts_without_a_unicode_map_are_skipped_with_the_reason(paper, tmp_path):
    path, _, _ = paper
    broken = tmp_path / "nomap.pdf"
    broken.write_bytes(path.read_bytes().replace(b"/ToUnicode", b"/ToUnicodX"))  # same length: the file stays valid
    with pytest.raises(DocumentError, match="fonts have no Unicode map"):
        load_document(broken, "nomap.pdf", str(broken))


def _image_pdf(path: Path, text_pages: list[str]) -> Path:
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.image(Image.new("RGB", (200, 120), "gray"), x=20, y=20, w=100)
    for text in text_pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def test_a_page_that_is_an_image_is_an_empty_page_and_an_image_pdf_is_skipped(tmp_path):
    doc = load_document(_image_pdf(tmp_path / "mixed.pdf", ["AlexNet won the 2012 challenge."]), "mixed.pdf", "mixed.pdf")
    assert doc.pages[0][0] == doc.pages[0][1] and doc.text[slice(*doc.pages[1])] == "AlexNet won the 2012 challenge."
    assert [c.page for c in Chunker().split(doc)] == [2]
    with pytest.raises(DocumentError, match="no text layer"):
        load_document(_image_pdf(tmp_path / "scan.pdf", []), "scan.pdf", "scan.pdf")


def test_a_rotated_page_keeps_its_text(tmp_path):
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ["The first page is upright.", "The second page is turned a quarter."]:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(tmp_path / "upright.pdf"))
    writer = PdfWriter()
    for number, page in enumerate(PdfReader(str(tmp_path / "upright.pdf")).pages):
        writer.add_page(page.rotate(90) if number == 1 else page)
    writer.write(str(tmp_path / "rotated.pdf"))
    doc = load_document(tmp_path / "rotated.pdf", "rotated.pdf", "rotated.pdf")
    assert doc.text[slice(*doc.pages[1])] == "The second page is turned a quarter."
    assert extract((tmp_path / "rotated.pdf").read_bytes()).rotations == (0, 90)


def test_a_thousand_page_pdf_is_read_page_by_page_in_bounded_memory(tmp_path):
    """Indexed whole, with its running header gone; the child process's peak memory stays near
    that of the text itself (3 MB of text here)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.set_auto_page_break(False)
    for number in range(1000):
        pdf.add_page()
        pdf.text(80, 10, "A long report, running header")
        for row in range(40):
            pdf.text(15, 25 + row * 6, f"Page {number + 1} line {row}: the ImageNet challenge ran from 2010 to 2017.")
        pdf.text(100, 290, str(number + 1))
    pdf.output(str(tmp_path / "long.pdf"))
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qa.documents import load_document\n"
        "doc = load_document(Path(sys.argv[1]), 'long.pdf', 'long.pdf')\n"
        "assert len(doc.pages) == 1000 and 'running header' not in doc.text, len(doc.pages)\n"
        "assert doc.text[slice(*doc.pages[999])].startswith('Page 1000 line 0:')\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"  # ru_maxrss keeps the parent's
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "long.pdf")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 400  # MB: the pages are not all held at once


def _marked_regions(png: bytes, layout, index: int, start: int, end: int):
    """Pixels of each highlight rectangle of `text[start:end]` in the rendered page."""
    import io

    import numpy as np
    from PIL import Image

    from qa.documents.pdf import _pixels

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    for rect in highlight_boxes(layout, start, end)[index]:
        x0, y0, x1, y1 = (round(v) for v in _pixels(rect, layout.page_sizes[index], layout.rotations[index], 1.5))
        yield image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]


def test_the_rendered_page_marks_the_passage_over_its_text(paper):
    from qa.documents.pdf import render_page

    path, drawn, doc = paper
    layout = extract(path.read_bytes(), boxes_for=None)
    start = doc.text.index("Sentence 21 ")
    end = doc.text.index(".", start) + 1
    png = render_page(path.read_bytes(), 1, layout, (start, end))
    for region in _marked_regions(png, layout, 1, start, end):
        ink = region.sum(axis=2) < 200  # the letters
        paper_colour = region[~ink].mean(axis=0)
        assert ink.mean() > 0.05, "no text under the highlight"
        assert paper_colour[0] > paper_colour[2] + 20 and paper_colour[1] > paper_colour[2] + 10  # tinted yellow, not white
    plain = render_page(path.read_bytes(), 1, layout)
    assert all(region.min() > 200 or (region.sum(axis=2) < 200).mean() > 0.05 for region in _marked_regions(plain, layout, 1, start, end))


def test_the_highlight_follows_a_rotated_page(tmp_path):
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    from qa.documents.pdf import render_page

    pdf = FPDF()
    pdf.set_font("Helvetica", size=14)
    pdf.add_page()
    pdf.text(20, 40, "This line is on a page turned a quarter.")
    pdf.output(str(tmp_path / "upright.pdf"))
    writer = PdfWriter()
    writer.add_page(PdfReader(str(tmp_path / "upright.pdf")).pages[0].rotate(90))
    writer.write(str(tmp_path / "rotated.pdf"))
    data = (tmp_path / "rotated.pdf").read_bytes()
    layout = extract(data, boxes_for=None)
    png = render_page(data, 0, layout, (0, len(layout.text)))
    regions = list(_marked_regions(png, layout, 0, 0, len(layout.text)))
    assert len(regions) == 1 and regions[0].shape[0] > regions[0].shape[1]  # the line runs down the turned page
    assert (regions[0].sum(axis=2) < 200).mean() > 0.05


@pytest.mark.parametrize("metadata, expected", [
    ("ImageNet Classification with Deep Convolutional Neural Networks", "ImageNet Classification with Deep Convolutional Neural Networks"),
    (STAMP, TITLE),  # a stamp is never the title: the largest type on the first page is
    ("Microsoft Word - draft7.docx", TITLE),
])
def test_the_title_is_the_metadata_title_unless_it_is_not_a_title(tmp_path, metadata, expected):
    from pypdf import PdfReader, PdfWriter

    path = tmp_path / "paper.pdf"
    pdf_samples.paper(path, pages=1)
    writer = PdfWriter(clone_from=PdfReader(str(path)))
    writer.add_metadata({"/Title": metadata})
    writer.write(str(tmp_path / "with-metadata.pdf"))
    assert load_document(tmp_path / "with-metadata.pdf", "p.pdf", "p.pdf").title == expected
