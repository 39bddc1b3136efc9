"""The default corpus as data: every document loads, has a title and says something."""

from pathlib import Path

import pytest

from qa.documents import load_document
from tests.conftest import ROOT

CORPUS = ROOT / "corpus"
FILES = sorted(p for p in CORPUS.iterdir() if not p.name.startswith("."))


def words(text: str) -> int:
    return len(text.split())


def test_corpus_has_the_promised_shape():
    kinds = {p.suffix for p in FILES}
    assert 8 <= len(FILES) <= 12
    assert {".md", ".html", ".txt"} <= kinds
    assert kinds <= {".md", ".html", ".txt", ".pdf"}
    total = sum(words(load_document(p, p.name, p.as_posix()).text) for p in FILES)
    assert 8_000 <= total <= 15_000


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_document_loads_with_a_title_and_sections(path: Path):
    doc = load_document(path, path.name, path.as_posix())
    assert doc.title and doc.title != path.name
    assert len(doc.headings) >= 3
    assert words(doc.text) >= 600
