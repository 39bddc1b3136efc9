import pytest

from qa.documents.chunking import Chunker, ChunkSettings
from qa.documents import document_from_text, load_document
from tests.conftest import make_pdf


def assert_offsets(doc, chunks):
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text


def test_offsets_hold_when_text_repeats():
    paragraph = "The same sentence repeats here. " * 40
    doc = document_from_text("rep.md", "# Repeats\n\n" + "\n\n".join([paragraph] * 6))
    chunks = Chunker(ChunkSettings(300, 60)).split(doc)
    assert len(chunks) > 10
    assert_offsets(doc, chunks)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # Together the chunks cover every non-blank character of the document.
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_chunks_respect_size_and_carry_ids_and_sections():
    body = "\n\n".join(f"## Part {i}\n\n" + " ".join(f"word{i}x{j}." for j in range(120)) for i in range(3))
    doc = document_from_text("doc.md", "# Title\n\n" + body)
    chunks = Chunker(ChunkSettings(400, 50)).split(doc)
    assert all(len(c.text) <= 400 for c in chunks)
    assert [c.id for c in chunks] == [f"doc.md#{i}" for i in range(len(chunks))]
    assert_offsets(doc, chunks)
    for c in chunks:
        assert c.section == doc.section_at(c.start)
    assert {c.section for c in chunks} >= {"Part 0", "Part 1", "Part 2"}


def test_pdf_chunks_stay_on_one_page(tmp_path):
    path = make_pdf(tmp_path / "p.pdf", ["alpha " * 200, "beta " * 200])
    doc = load_document(path, "p.pdf", "p.pdf")
    chunks = Chunker(ChunkSettings(300, 30)).split(doc)
    assert_offsets(doc, chunks)
    for c in chunks:
        assert c.page in (1, 2)
        start, end = doc.pages[c.page - 1]
        assert start <= c.start and c.end <= end


@pytest.mark.parametrize(
    "size, overlap, message",
    [(800, 800, "less than chunk_size"), (800, 900, r"got 900 >= 800"), (10, 0, ">= 50"), (800, -1, ">= 0")],
)
def test_bad_settings_fail_early_with_the_rule(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        ChunkSettings(size, overlap)


def test_zero_overlap_is_allowed():
    assert ChunkSettings(100, 0).chunk_overlap == 0
