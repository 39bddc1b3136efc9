"""The Streamlit app through `streamlit.testing.v1.AppTest`, finding widgets and blocks by key.

Fast tests render hand-made answers, so they do not depend on the engine's current tuning.
Integration tests run the real app on small indexes built with the real model, and compare
what the page shows with what `Engine.ask` returns for the same question.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

import app
from qa.engine import DocumentView
from qa.types import Answer, Citation

from .conftest import ROOT, write

APP = ROOT / "app.py"
TRICKY = (
    "<b>Tricky</b> **formatting**\n\n"
    "This note has <script>alert(1)</script> and <img src=x onerror=alert(2)> in it.\n"
    "# not a heading\n"
    "- not a list\n"
    "    not code\n"
    "The launch code word for the vault is marzipan, and [a link](javascript:alert(3)) is not a link.\n"
)


# --- escaping, without Streamlit ----------------------------------------------------------------


def unescape(markdown: str) -> str:
    """What a reader sees in `escape`'s output, by CommonMark's rules for the syntax it uses."""
    text = markdown.replace("\\\n", "\n").replace("\u00a0", " ")
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def plain(markdown: str) -> str:
    """What a reader sees in `markup`'s output: the text without its highlights."""
    for part in (*app.ANSWER_STYLE, app.PASSAGE_STYLE[0]):
        markdown = markdown.replace(part, "")
    return unescape(re.sub(r"(?<!\\)\]", "", markdown))


def shown(text: str) -> str:
    """`text` as `escape` promises to show it: leading tabs as spaces, no trailing blank lines."""
    lines = []
    for line in text.replace("\r", "").replace("\u00a0", " ").split("\n"):
        body = line.lstrip(" \t")
        lines.append(line[: len(line) - len(body)].replace("\t", "    ") + body)
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


@given(st.text())
def test_escape_shows_any_text_as_written(text: str) -> None:
    assert unescape(app.escape(text)) == shown(text)


@given(st.text())
def test_escape_leaves_no_markdown_syntax_active(text: str) -> None:
    markdown = app.escape(text)
    assert not re.search(r"[!-/:-@\[-`{-~]", re.sub(r"\\[!-/:-@\[-`{-~]|\\\n", "", markdown))
    lines = markdown.split("\n")
    assert all(line.endswith("\\") for line in lines[:-1])  # each line break is a hard break
    assert not any(line.startswith((" ", "\t")) for line in lines)  # indentation could start a code block


def test_escape_of_html_and_markdown() -> None:
    assert app.escape("<script>alert(1)</script>") == r"\<script\>alert\(1\)\<\/script\>"
    assert app.escape("# heading\n**bold**") == "\\# heading\\\n\\*\\*bold\\*\\*"
    assert app.escape("    code") == "\u00a0\u00a0\u00a0\u00a0code"


def test_markup_highlights_the_exact_occurrence() -> None:
    style = ("<<", ">>")
    assert app.markup("cat cat cat", [(4, 7, style)]) == "cat <<cat>> cat"
    assert app.markup("a\nbc", [(0, 4, style)]) == "<<a>>\\\n<<bc>>"  # never across a line break
    assert app.markup("a <b>", [(2, 5, style)]) == r"a <<\<b\>>>"


def test_the_app_is_a_thin_view() -> None:
    """No model or vector library in the view, and nothing runs on import but definitions."""
    tree = ast.parse(APP.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"faiss", "sentence_transformers", "torch", "transformers"}
    def definition(node: ast.stmt) -> bool:
        if isinstance(node, ast.Expr):
            return isinstance(node.value, ast.Constant)  # the docstring
        if isinstance(node, ast.If):
            return ast.unparse(node.test) == "TYPE_CHECKING"
        return isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign))

    assert [ast.unparse(node)[:60] for node in tree.body[:-1] if not definition(node)] == []
    assert ast.unparse(tree.body[-1]) == "if __name__ == '__main__':\n    main()"


def test_command_line_folders() -> None:
    assert app.parse_args([]) == app.Paths(Path("index"), Path("corpus"))
    assert app.parse_args(["--index", "i", "--docs", "d", "--other"]) == app.Paths(Path("i"), Path("d"))


def test_indexer_runs_one_sync_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr("ingest.sync.sync", lambda *args, **kwargs: release.wait(10) and None)
    indexer = app.Indexer(tmp_path / "index")
    first = indexer.start(tmp_path, None)
    assert first is not None and indexer.busy
    assert indexer.start(tmp_path, None) is None
    release.set()
    _until(lambda: first.finished)
    assert first.error is None and not indexer.busy
    assert indexer.start(tmp_path, None) is not None


# --- rendering hand-made answers ----------------------------------------------------------------


def _citation(rank: int, text: str, answer: str | None = None, *, title: str = "Tricky", source: str = "docs/tricky.txt", start: int = 0) -> Citation:
    at = text.index(answer) if answer else None
    return Citation(
        rank=rank, source=source, title=title, page=None, section="Intro", chunk_id=f"{Path(source).name}#0",
        start=start, end=start + len(text), text=text, score=0.25,
        answer_start=at, answer_end=at + len(answer) if answer else None,
    )


def _render(answer: Answer, document: DocumentView | None = None, records: dict | None = None) -> AppTest:
    """`show_answer` with an engine that knows `document` (its view) and `records` (the index's
    document records), then the PDF pages it asked for, as `chat` does."""

    def script(answer, document, records):
        from types import SimpleNamespace

        import app

        class Engine:
            index = SimpleNamespace(documents=records or {})

            def document(self, doc_id):
                return document

        pages = []
        app.show_answer(Engine(), 0, answer, pages)
        for slot in pages:
            app.show_page(Engine(), slot)

    at = AppTest.from_function(script, kwargs={"answer": answer, "document": document, "records": records}, default_timeout=30).run()
    assert not at.exception
    return at


def _texts(block, kind: str = "markdown") -> list[str]:
    return [node.value for node in block if getattr(node, "type", None) == kind]


def test_an_answer_shows_its_span_confidence_context_and_numbered_citations() -> None:
    first = _citation(1, "Intro.\nThe code word is marzipan, they said.", "marzipan")
    second = _citation(2, "Another passage.", title="Other", source="docs/other.md")
    answer = Answer("What is the code word?", "marzipan", 0.87, False, (second, first), context="The code word is marzipan, they said.")
    at = _render(answer)
    markdown = _texts(at)
    assert markdown[0] == "### marzipan :blue-badge[\\[1\\]]"
    assert ":green-badge[87% confidence]" in markdown
    assert "> The code word is " + app.ANSWER_STYLE[0] + "marzipan" + app.ANSWER_STYLE[1] + "\\, they said\\." in markdown
    assert [e.label for e in at.expander] == ["\\[2\\] Other · other\\.md", "\\[1\\] Tricky · tricky\\.txt"]
    passage = _texts(at.expander("cite_0_1"))
    assert passage == [app.markup(first.text, [(first.answer_start, first.answer_end, app.ANSWER_STYLE)])]
    assert _texts(at.expander("cite_0_1"), "caption") == ["tricky\\.txt · section “Intro” · characters 0–44"]


def test_an_abstention_is_shown_as_such_with_the_closest_passages() -> None:
    closest = _citation(1, "Nothing about cakes here.")
    at = _render(Answer("How do I bake a cake?", None, 0.1, True, (closest,), context="Nothing about cakes here."))
    markdown = _texts(at)
    assert markdown[0] == f"**{app.escape(Answer.NO_ANSWER_TEXT)}**"
    assert not any("confidence" in text for text in markdown)
    assert _texts(at, "caption")[0].startswith("These are the closest passages")
    assert _texts(at.expander("cite_0_1")) == [app.escape(closest.text)]


def test_document_and_title_markup_is_escaped() -> None:
    context = "The launch code word for the vault is marzipan, and [a link](javascript:alert(3)) is not a link."
    citation = _citation(1, TRICKY, "marzipan", title="<b>Tricky</b> **formatting**")
    at = _render(Answer("q", "marzipan", 0.9, False, (citation,), context=context))
    assert at.expander("cite_0_1").label == app.escape("[1] <b>Tricky</b> **formatting** · tricky.txt")
    passage = _texts(at.expander("cite_0_1"))[0]
    assert plain(passage) == TRICKY.rstrip("\n")
    assert not re.search(r"(?<!\\)[<>*#\[\]()]", passage.replace(app.ANSWER_STYLE[0], "").replace(app.ANSWER_STYLE[1], ""))
    quoted = next(text for text in _texts(at) if text.startswith("> "))
    assert plain(quoted.removeprefix("> ")) == context


def test_view_in_document_highlights_the_passage_in_a_window() -> None:
    text = "Before.\n" * 400 + "The passage with the answer here.\n" + "After.\n" * 3000
    start = text.index("The passage")
    citation = _citation(1, "The passage with the answer here.", "answer", start=start)
    document = DocumentView("tricky.txt", "docs/tricky.txt", "Tricky", text, stale=False)
    at = _render(Answer("q", "answer", 0.9, False, (citation,), context=citation.text), document)
    at.toggle(key="view_0_1").set_value(True).run()
    window = _texts(at.expander("cite_0_1"))[-1]
    assert app.PASSAGE_STYLE[0] + "The passage with the" + app.PASSAGE_STYLE[1] + " " + app.ANSWER_STYLE[0] + "answer" in window
    assert plain(window) in text and len(plain(window)) < len(text) / 2  # a window of the document, as written
    assert not any("changed since" in w for w in _texts(at, "alert"))


def test_a_changed_document_is_shown_without_highlights() -> None:
    citation = _citation(1, "Old passage.", "passage")
    document = DocumentView("tricky.txt", "docs/tricky.txt", "Tricky", "New text entirely.", stale=True)
    at = _render(Answer("q", "passage", 0.9, False, (citation,), context="Old passage."), document)
    at.toggle(key="view_0_1").set_value(True).run()
    assert "changed since it was indexed" in at.warning[0].value
    assert _texts(at.expander("cite_0_1"))[-1] == "New text entirely\\."


# --- the real app on a real index ---------------------------------------------------------------


@dataclass(frozen=True)
class Library:
    docs: Path
    index: Path


def _library(root: Path) -> Library:
    from ingest.sync import sync

    docs = root / "docs"
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet was designed by Alex Krizhevsky.\n\n## Training\n\nIt was trained on two GTX 580 GPUs for five to six days.\n")
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database of English begun at Princeton by George A. Miller.\n")
    write(docs / "tricky.txt", TRICKY)
    sync([docs], root / "index")
    return Library(docs, root / "index")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """Shared by the tests that only ask questions."""
    return _library(tmp_path_factory.mktemp("library"))


@pytest.fixture
def own_library(tmp_path: Path) -> Library:
    """For tests that change the documents or the index."""
    return _library(tmp_path)


def _open(library: Library, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setattr(sys, "argv", ["app.py", "--index", str(library.index), "--docs", str(library.docs)])
    return _run(AppTest.from_file(str(APP), default_timeout=120))


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="question").set_value(question)
    return _run(at)


def _until(done, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s")
        time.sleep(0.2)


def _reindexed(at: AppTest):
    """The re-index report, once the background run has finished."""

    def finished() -> bool:
        _run(at)
        return "reindex_result" in {node.key for node in at.sidebar if hasattr(node, "key")}

    _until(finished)
    return at.get_by_key("reindex_result")


def _expect_rendering(at: AppTest, number: int, expected: Answer) -> None:
    turn = at.get_by_key(f"turn_{number}")
    markdown = _texts(turn)
    if expected.no_answer:
        assert markdown[0] == f"**{app.escape(Answer.NO_ANSWER_TEXT)}**"
    else:
        assert markdown[0].startswith(f"### {app.escape(expected.answer)} :blue-badge")
        assert any(f"{expected.confidence:.0%} confidence" in text for text in markdown)
    for citation in expected.citations:
        block = at.expander(f"cite_{number}_{citation.rank}")
        assert block.label == app.escape(f"[{citation.rank}] {citation.title} · {Path(citation.source).name}")
        marks = [(citation.answer_start, citation.answer_end, app.ANSWER_STYLE)] if citation.answer_start is not None else []
        assert _texts(block)[0] == app.markup(citation.text, marks)


@pytest.mark.integration
def test_ask_shows_the_engines_answer_and_citations(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa

    at = _open(library, monkeypatch)
    question = "How many GPUs was AlexNet trained on?"
    _ask(at, question)
    assert _texts(at.chat_message[0]) == [app.escape(question)]
    expected = qa.load(library.index).ask(question, k=5)
    assert expected.citations
    _expect_rendering(at, 0, expected)
    assert {c.source for c in expected.citations} >= {str(library.docs / "alexnet.md")}


@pytest.mark.integration
def test_a_question_the_documents_do_not_answer(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa

    at = _open(library, monkeypatch)
    at.slider(key="k").set_value(2)
    question = "What is a good recipe for chocolate cake?"
    _ask(at, question)
    expected = qa.load(library.index).ask(question, k=2)
    _expect_rendering(at, 0, expected)
    assert len([e for e in at.get_by_key("turn_0") if getattr(e, "type", None) == "expander"]) == 2


@pytest.mark.integration
def test_a_follow_up_is_read_with_the_conversation_and_new_conversation_forgets_it(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa
    from qa.conversation import Turn as ConversationTurn

    at = _open(library, monkeypatch)
    first = qa.load(library.index).ask("Who began WordNet?")
    assert first.answer  # the follow-up below needs an answer to point back to
    _ask(at, "Who began WordNet?")
    _ask(at, "Where was it begun?")
    expected = qa.load(library.index).ask("Where was it begun?", history=[ConversationTurn.of(first)])
    assert expected.read_as == "Where was WordNet begun?"
    assert _texts(at.chat_message[2]) == [app.escape("Where was it begun?")]
    assert _texts(at.chat_message[2], "caption") == [app.escape(f"read as: {expected.read_as}")]
    _expect_rendering(at, 1, expected)
    at.button(key="new_conversation").click()
    _run(at)
    assert not at.chat_message and not [b for b in at.button if b.key == "new_conversation"]
    _ask(at, "Where was it begun?")
    assert _texts(at.chat_message[0], "caption") == []  # asked first, it is read alone


@pytest.mark.integration
def test_an_empty_question_gets_one_sentence(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _ask(_open(library, monkeypatch), "   ")
    errors = [node.value for node in at.get_by_key("turn_0") if getattr(node, "type", None) == "error"]
    assert errors == [app.escape("The question is empty: type a question about the documents.")]


@pytest.mark.integration
def test_html_in_a_document_and_a_question_is_shown_as_text(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(library, monkeypatch)
    question = "<img src=x onerror=alert(1)> What is the **launch code** word?"
    _ask(at, question)
    assert _texts(at.chat_message[0]) == [r"\<img src\=x onerror\=alert\(1\)\> What is the \*\*launch code\*\* word\?"]
    tricky = next(e for e in at.expander if "tricky" in e.label)
    passage = _texts(tricky)[0]
    assert plain(passage) == TRICKY.rstrip("\n")
    assert not re.search(r"(?<!\\)[<>#]", passage)
    tricky.toggle[0].set_value(True)
    _run(at)
    tricky = next(e for e in at.expander if "tricky" in e.label)
    window = _texts(tricky)[-1]
    assert "onerror" in window and not re.search(r"(?<!\\)[<>#]", window)


@pytest.mark.integration
def test_upload_and_reindex_then_ask_about_the_new_document(own_library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(own_library, monkeypatch)
    assert at.sidebar.metric[0].value == "3"
    at.file_uploader(key="upload").set_value([
        ("zebras.md", b"# Zebras\n\nThe Grevy's zebra lives in the grasslands of Kenya and Ethiopia.\n", "text/markdown"),
        ("okapi.txt", b"Okapi\n\nThe okapi is a forest giraffe of the Congo basin.\n", "text/plain"),
        ("broken.pdf", b"%PDF-1.4 this is not really a PDF", "application/pdf"),
    ])
    _run(at)
    assert [s.value for s in at.sidebar.success] == [app.escape(f"Saved {name}.") for name in ("zebras.md", "okapi.txt", "broken.pdf")]
    assert at.button(key="reindex").proto.type == "primary"
    at.button(key="reindex").click()
    report = _reindexed(at)
    summary = [node.value for node in report if getattr(node, "type", None) == "warning"]
    assert len(summary) == 1 and re.fullmatch(r"Re\\-indexed in \d+\\\.\d s\\: 2 added\\, 3 unchanged\\, 1 skipped\\.", summary[0])
    files = _texts(report)[0].split("  \n")
    assert files[:2] == [":green-badge[added] okapi\\.txt", ":green-badge[added] zebras\\.md"]
    assert files[2] == ":orange-badge[skipped] broken\\.pdf" and files[3].startswith(":gray[")
    assert at.sidebar.metric[0].value == "5"
    _ask(at, "Where does the Grevy's zebra live?")
    sources = [e.label for e in at.get_by_key("turn_0") if getattr(e, "type", None) == "expander"]
    assert any("zebras\\.md" in label for label in sources)


@pytest.mark.integration
def test_each_bad_upload_is_refused_or_renamed_with_a_message(own_library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(own_library, monkeypatch)
    at.file_uploader(key="upload").set_value([
        ("virus.exe", b"MZ", "application/octet-stream"),
        ("huge.txt", b"x" * (25 * 2**20 + 1), "text/plain"),
        ("empty.md", b"", "text/markdown"),
        ("../escape.md", b"# Escape\n", "text/markdown"),
        ("/etc/absolute.md", b"# Absolute\n", "text/markdown"),
        ("control\x1b[2J.md", b"# Control\n", "text/markdown"),
        ("alexnet.md", b"# A different AlexNet\n", "text/markdown"),
        ("wordnet.txt", (own_library.docs / "wordnet.txt").read_bytes(), "text/plain"),
    ])
    _run(at)
    errors = [e.value for e in at.sidebar.error]
    assert errors == [
        app.escape("virus.exe is not a supported document: only .htm, .html, .markdown, .md, .pdf, .txt files can be added."),
        app.escape("huge.txt is 25.0 MB, over the 25 MB limit for one document."),
        app.escape("empty.md is empty, so there is nothing to index."),
    ]
    warnings = [w.value for w in at.sidebar.warning]
    assert warnings == [
        app.escape("Saved '../escape.md' as escape.md, a safe name inside the documents folder."),
        app.escape("Saved '/etc/absolute.md' as absolute.md, a safe name inside the documents folder."),
        app.escape("Saved 'control\\x1b[2J.md' as control[2J.md, a safe name inside the documents folder."),
        app.escape("A different alexnet.md is already in the documents folder, so this one was saved as alexnet-2.md."),
    ]
    assert [i.value for i in at.sidebar.info] == [app.escape("wordnet.txt is already in the documents folder with the same content.")]
    names = sorted(p.name for p in own_library.docs.iterdir())
    assert names == ["absolute.md", "alexnet-2.md", "alexnet.md", "control[2J.md", "escape.md", "tricky.txt", "wordnet.txt"]
    assert (own_library.docs / "alexnet.md").read_text().startswith("# AlexNet")
    assert not (own_library.docs.parent / "escape.md").exists()
    _run(at)  # a rerun does not save the same uploads twice
    assert sorted(p.name for p in own_library.docs.iterdir()) == names


@pytest.mark.integration
def test_delete_removes_the_file_and_reindexes(own_library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(own_library, monkeypatch)
    at.button(key=f"delete_{app.doc_key('wordnet.txt')}").click()
    report = _reindexed(at)
    assert not (own_library.docs / "wordnet.txt").exists()
    assert _texts(report) == [":gray-badge[removed] wordnet\\.txt"]
    assert at.sidebar.metric[0].value == "2"
    assert all("wordnet" not in e.label for e in at.expander(key="documents").children.values() if hasattr(e, "label"))


@pytest.mark.integration
def test_a_second_reindex_says_one_is_running(own_library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import store

    at = _open(own_library, monkeypatch)
    with store.writer_lock(own_library.index):  # as if `python -m ingest` were running
        at.button(key="reindex").click()
        report = _reindexed(at)
    errors = [node.value for node in report if getattr(node, "type", None) == "error"]
    assert len(errors) == 1 and errors[0].startswith("Another ingest is already updating")


def test_a_missing_documents_folder_is_one_sentence_with_a_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(Library(tmp_path / "nowhere", tmp_path / "index"), monkeypatch)
    assert [e.value for e in at.error] == [app.escape(f"{tmp_path / 'nowhere'} does not exist; name a documents folder or file (the default is corpus/).")]
    assert at.button(key="retry_build").label == "Try again"


@pytest.mark.integration
def test_a_missing_index_is_built_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet was designed by Alex Krizhevsky.\n")
    at = _open(Library(docs, tmp_path / "index"), monkeypatch)  # returns once the build is done
    report = _reindexed(at)
    assert _texts(report) == [":green-badge[added] alexnet\\.md"]
    assert at.sidebar.metric[0].value == "1"
    assert (tmp_path / "index" / "CURRENT").is_file()


# --- PDF citations: the page, with the passage marked ---------------------------------------------


@pytest.fixture(scope="module")
def pdf_paper(tmp_path_factory):
    from qa.documents import load_document
    from qa.store import DocumentRecord
    from tests import pdf_samples

    if pdf_samples.font_path() is None:
        pytest.skip("no TrueType font with ligatures here (fonts-dejavu-core)")
    path = tmp_path_factory.mktemp("pdf") / "paper.pdf"
    pdf_samples.paper(path)
    doc = load_document(path, "paper.pdf", str(path))
    record = DocumentRecord("paper.pdf", str(path), doc.title, "pdf", doc.sha256, path.stat().st_size, 10, 0.0)
    start = doc.text.index("Sentence 21 ")
    end = doc.text.index(".", start) + 1
    passage = doc.text[start:end]
    at = passage.index("classification")
    citation = Citation(rank=1, source=str(path), title=doc.title, page=2, section=None, chunk_id="paper.pdf#3", start=start, end=end,
                        text=passage, score=0.3, answer_start=at, answer_end=at + len("classification"))
    view = DocumentView("paper.pdf", str(path), doc.title, doc.text, stale=False)
    return path, record, citation, view


def _images(block) -> list:
    """Image elements anywhere inside `block`."""
    found = []
    for node in getattr(block, "children", {}).values():
        found += [node] if getattr(node, "type", None) == "image" else _images(node)
    return found


def test_a_pdf_citation_shows_its_page_with_the_passage_marked(pdf_paper) -> None:
    path, record, citation, view = pdf_paper
    at = _render(Answer("q", "classification", 0.9, False, (citation,), context=citation.text), view, {"paper.pdf": record})
    expander = at.expander("cite_0_1")
    assert len(_images(expander)) == 1
    assert _texts(expander)[0] == app.markup(citation.text, [(citation.answer_start, citation.answer_end, app.ANSWER_STYLE)])
    image = app.page_image(record.source, record.sha256, 1, (citation.start, citation.end), (citation.start + citation.answer_start, citation.start + citation.answer_end), citation.text)
    plain_page = app.page_image(record.source, record.sha256, 1, None, None, None)
    assert image != plain_page and image[:8] == b"\x89PNG\r\n\x1a\n"


def test_view_in_document_steps_through_the_pdf_pages(pdf_paper) -> None:
    path, record, citation, view = pdf_paper
    at = _render(Answer("q", "classification", 0.9, False, (citation,), context=citation.text), view, {"paper.pdf": record})
    at.toggle(key="view_0_1").set_value(True).run()
    pages = at.number_input(key="pages_0_1")
    assert pages.value == 2 and pages.max == 3 and pages.label == "Page (of 3)"
    assert len(_images(at.expander("cite_0_1"))) == 2  # the cited page, and the document's page (the same one)
    pages.set_value(3).run()
    assert len(_images(at.expander("cite_0_1"))) == 2 and not at.exception


def test_a_pdf_that_changed_since_indexing_falls_back_to_the_text_with_one_sentence(pdf_paper, tmp_path) -> None:
    path, record, citation, view = pdf_paper
    moved = tmp_path / "paper.pdf"
    moved.write_bytes(path.read_bytes() + b"\n% edited\n")
    changed = type(record)(**{**record.__dict__, "source": str(moved)})
    at = _render(Answer("q", "classification", 0.9, False, (citation,), context=citation.text), view, {"paper.pdf": changed})
    expander = at.expander("cite_0_1")
    assert _images(expander) == []
    assert _texts(expander, "caption")[-1] == app.escape("Page 2 cannot be shown as an image: paper.pdf changed since it was indexed (press Re-index); the passage's text is above.")
