"""Citations never point at text a document no longer has: after an edit and a re-index they
quote the new text at the right offsets, and before the re-index the document is flagged as
changed, so its old offsets are not used to highlight the new text."""

from __future__ import annotations

from pathlib import Path

import pytest

import qa
from ingest.sync import sync
from tests.conftest import FakeEmbedder, write

OLD = "# AlexNet\n\nAlexNet won the 2012 challenge with a top-5 error of 15.3%.\n\nIt used two GTX 580 GPUs.\n"
NEW = "# AlexNet\n\nA new first paragraph pushes every offset further along.\n\nAlexNet won the 2012 challenge with a top-5 error of 16.4%.\n\nIt used two GTX 580 GPUs.\n"
QUESTION = "What top-5 error did AlexNet win the 2012 challenge with?"


@pytest.fixture
def library(tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs / "alexnet.md", OLD)
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database begun at Princeton by George A. Miller.\n")
    write(docs / "page.html", "<html><body><h1>Page</h1><p>The ImageNet challenge ran from 2010 to 2017.</p></body></html>")
    embedder = FakeEmbedder()
    sync([docs], tmp_path / "index", embedder=embedder)
    return docs, tmp_path / "index", embedder, qa.load(tmp_path / "index", embedder=embedder)


def _check_against_files(engine, answer) -> None:
    """Every citation is the current text at its offsets, and the answer lies inside its passage."""
    for citation in answer.citations:
        view = engine.document(citation.chunk_id.rsplit("#", 1)[0])
        assert not view.stale and view.text[citation.start : citation.end] == citation.text
        if citation.answer_start is not None:
            assert citation.text[citation.answer_start : citation.answer_end] == answer.answer


def test_after_an_edit_and_a_reindex_citations_quote_the_new_text(library) -> None:
    docs, index_dir, embedder, engine = library
    before = engine.ask(QUESTION)
    assert any("15.3%" in c.text for c in before.citations)
    _check_against_files(engine, before)

    write(docs / "alexnet.md", NEW)
    sync([docs], index_dir, embedder=embedder)
    assert engine.reload()
    after = engine.ask(QUESTION)
    assert after.citations and not any("15.3%" in c.text for c in after.citations)
    assert any("16.4%" in c.text for c in after.citations)
    _check_against_files(engine, after)
    assert all("15.3%" not in chunk.text for chunk in engine.index.chunks)


def test_a_document_changed_but_not_reindexed_is_flagged_as_changed(library) -> None:
    docs, _, _, engine = library
    citation = next(c for c in engine.ask(QUESTION).citations if c.source.endswith("alexnet.md"))
    assert not engine.document("alexnet.md").stale

    write(docs / "alexnet.md", NEW)
    view = engine.document("alexnet.md")
    assert view.stale and view.text == NEW  # the current text, flagged: the old offsets no longer fit it
    assert view.text[citation.start : citation.end] != citation.text

    write(docs / "page.html", "<html><body><h1>Page</h1><p>Edited.</p></body></html>")
    assert engine.document("page.html").stale
    assert not engine.document("wordnet.txt").stale


def test_a_deleted_document_is_flagged_with_no_text(library) -> None:
    docs, _, _, engine = library
    (docs / "wordnet.txt").unlink()
    view = engine.document("wordnet.txt")
    assert view.stale and view.text is None


def test_an_edit_back_to_the_indexed_bytes_is_not_stale(library) -> None:
    docs, _, _, engine = library
    write(docs / "alexnet.md", NEW)
    write(docs / "alexnet.md", OLD)
    assert not engine.document("alexnet.md").stale
