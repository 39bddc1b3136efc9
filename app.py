"""The chat app: ask the indexed documents, check the passages an answer cites, add documents.

    streamlit run app.py -- --index DIR --docs DIR      (defaults: index/ and corpus/)

A thin view over `qa` and `ingest`. The engine is loaded once per process and shared read-only by
all sessions; indexing runs only when a user asks for it (or when there is no index yet), in a
background thread, one run at a time. Document and question text always goes through `escape`,
so it is shown as written: never as HTML, and its Markdown never changes the page.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import streamlit as st

import qa
from qa.conversation import Turn as ConversationTurn
from qa.errors import IndexNotFound, QAError
from qa.types import Answer, Citation
from qa.documents.uploads import Upload, UploadRefused, delete_document, save_upload

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from ingest.sync import SyncReport
    from qa.engine import Engine

log = logging.getLogger(__name__)

WINDOW_BEFORE = 1500  # characters of the document shown before a cited passage in "view in document"
WINDOW_AFTER = 4000
UPLOAD_LIMIT_MB = 25
REPORT_LINES = 30
STATUS_COLORS = {"added": "green", "updated": "blue", "removed": "gray", "skipped": "orange"}
STAGES = {"reading": ("Reading files", 0.0, 0.2), "embedding": ("Embedding text", 0.2, 0.95), "writing": ("Writing the index", 0.95, 1.0)}
Style = tuple[str, str]  # Markdown put before and after a highlighted range
Mark = tuple[int, int, Style]  # a range of text to highlight, and how
ANSWER_STYLE: Style = (":orange-background[:orange[**", "**]]")
PASSAGE_STYLE: Style = (":blue-background[", "]")


@dataclass(frozen=True)
class Paths:
    index: Path
    docs: Path


@dataclass(frozen=True)
class Turn:
    """One question of this session and what came back: an answer, or one sentence of error."""

    number: int
    question: str
    answer: Answer | None = None
    error: str | None = None


def parse_args(argv: list[str]) -> Paths:
    """Folders from `streamlit run app.py -- --index DIR --docs DIR`; Streamlit's own options never get here."""
    parser = argparse.ArgumentParser(prog="streamlit run app.py --", exit_on_error=False)
    parser.add_argument("--index", default="index", help="index folder (default: index)")
    parser.add_argument("--docs", default="corpus", help="documents folder (default: corpus)")
    args, _ = parser.parse_known_args(argv)
    return Paths(Path(args.index), Path(args.docs))


# --- showing text as written --------------------------------------------------------------------

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape(text: str) -> str:
    """Markdown that displays `text` verbatim: every ASCII punctuation mark is backslash-escaped
    (so no HTML, emphasis, links, lists, directives or math), line breaks are kept as hard breaks,
    and leading spaces become non-breaking ones (so indentation never starts a code block). Only
    bare http(s) URLs stay clickable: Streamlit links them after parsing (in a new tab)."""
    return markup(text)


def markup(text: str, marks: Sequence[Mark] = ()) -> str:
    """`escape(text)` with each (start, end, style) range wrapped in a Markdown directive style;
    the ranges must not overlap. A style is applied line by line, so it never spans a break."""
    cuts = sorted({0, len(text), *(p for start, end, _ in marks for p in (start, end) if 0 <= p <= len(text))})
    lines: list[list[tuple[str, Style | None]]] = [[]]
    for start, end in zip(cuts, cuts[1:]):
        style = next((s for a, b, s in marks if a <= start and end <= b), None)
        for number, part in enumerate(text[start:end].split("\n")):
            if number:
                lines.append([])
            lines[-1].append((part.replace("\r", ""), style))
    while len(lines) > 1 and not "".join(part for part, _ in lines[-1]).strip():
        lines.pop()
    return "\\\n".join(_markup_line(line) for line in lines)


def _markup_line(pieces: list[tuple[str, Style | None]]) -> str:
    out, at_start = [], True
    for part, style in pieces:
        if at_start:
            stripped = part.lstrip(" \t")
            out.append(part[: len(part) - len(stripped)].replace("\t", "    ").replace(" ", "\u00a0"))
            part, at_start = stripped, not stripped
        if style and part.strip():  # spaces stay outside the style, or its ** would not close
            core = part.strip()
            left, right = part[: part.index(core)], part[part.index(core) + len(core) :]
            out.append(left + style[0] + _escape_punctuation(core) + style[1] + right)
        else:
            out.append(_escape_punctuation(part))
    return "".join(out)


def _escape_punctuation(text: str) -> str:
    return _PUNCTUATION.sub(r"\\\1", text)


# --- shared by every session of this process ----------------------------------------------------


@st.cache_resource(show_spinner="Loading the index and the model…")
def load_engine(index_dir: str) -> Engine:
    return qa.load(index_dir)


@dataclass
class Job:
    """One re-index run. The worker thread writes it; page runs only read it."""

    number: int
    stage: str = "starting"
    done: int = 0
    total: int = 0
    report: SyncReport | None = None
    error: str | None = None
    finished: bool = False

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total


class Indexer:
    """Runs ingest's sync in a background thread, one run at a time per index: a page rerun
    cannot cancel it, and every session keeps answering from the loaded index until the new
    version is swapped in. (Another process is kept out by ingest's own file lock.)"""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.job: Job | None = None
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.finished

    def start(self, docs_dir: Path, engine: Engine | None) -> Job | None:
        """Start a run and return it; None when one is already running."""
        with self._lock:
            if self.busy:
                return None
            self.job = job = Job(next(self._numbers))
        threading.Thread(target=self._run, args=(job, docs_dir, engine), name="reindex", daemon=True).start()
        return job

    def _run(self, job: Job, docs_dir: Path, engine: Engine | None) -> None:
        from ingest.sync import sync

        try:
            job.report = sync([docs_dir], self.index_dir, embedder=engine.embedder if engine else None, progress=job.progress)
            if engine is not None:
                engine.reload()
        except QAError as exc:
            job.error = str(exc)
        except Exception as exc:  # shown to the user, with the traceback in the server log
            log.exception("re-index of %s failed", self.index_dir)
            job.error = f"The re-index failed ({type(exc).__name__}: {exc}); the previous index is still in use."
        finally:
            job.finished = True


@st.cache_resource(show_spinner=False)
def indexer(index_dir: str) -> Indexer:
    return Indexer(Path(index_dir))


# --- the page -----------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="Ask the documents", page_icon=":material/quick_reference_all:")
    try:
        paths = parse_args(sys.argv[1:])
    except argparse.ArgumentError as exc:
        st.error(escape(f"Bad command line: {exc}; use streamlit run app.py -- --index DIR --docs DIR."))
        return
    st.title("Ask the documents", anchor=False)
    # Before the model loads, so the question can be typed meanwhile; it is pinned to the bottom anyway.
    question = st.chat_input("Ask a question about the documents", key="question")
    if question:
        st.session_state["pending"] = question
    builder = indexer(str(paths.index))
    try:
        engine = load_engine(str(paths.index))
        engine.reload()  # picks up an index written by `python -m ingest` meanwhile; cheap when unchanged
    except IndexNotFound:
        first_build(paths, builder)
        return
    except QAError as exc:
        st.error(escape(str(exc)))
        return
    with st.sidebar:
        progress = sidebar(engine, paths, builder)
    chat(engine, st.session_state.pop("pending", None))
    follow_job(builder, progress)


def first_build(paths: Paths, builder: Indexer) -> None:
    """No index yet: build one from the documents folder, showing progress, then load it. A
    question asked meanwhile is kept, and answered once the index is ready."""
    st.info(escape(f"There is no index in {paths.index}/ yet, so it is being built from {paths.docs}/; this happens once."))
    job = builder.job or builder.start(paths.docs, None) or builder.job
    st.session_state["job"] = job.number
    if job.finished:
        st.error(escape(job.error or f"The index was built but cannot be found in {paths.index}/."))
        if st.button("Try again", key="retry_build"):
            builder.start(paths.docs, None)
            st.rerun()
        return
    follow_job(builder, st.empty())


def sidebar(engine: Engine, paths: Paths, builder: Indexer) -> DeltaGenerator:
    """The index at a glance, adding and deleting documents, settings. Returns where this
    session's re-index progress goes."""
    index = engine.index
    st.header("Index", anchor=False)
    left, right = st.columns(2)
    left.metric("Documents", f"{len(index.documents):,}")
    right.metric("Passages", f"{len(index.chunks):,}")
    updated = max((d.indexed_at for d in index.documents.values()), default=index.created_at)
    st.caption(escape(f"Model {index.model.name} · updated {datetime.fromtimestamp(updated):%d %b %Y, %H:%M}"))

    st.subheader("Add documents", anchor=False)
    uploads(paths)
    reindex_button(engine, paths, builder)
    progress = job_status(builder, paths.docs)
    document_list(engine, paths, builder)

    st.subheader("Settings", anchor=False)
    st.slider("Passages to cite", 1, 10, 5, key="k", help="How many passages each answer lists as its sources.")
    st.toggle("Show scores", key="show_scores", help="Show each passage's retrieval score.")
    return progress


def uploads(paths: Paths) -> None:
    """Save each newly uploaded file into the documents folder once, and say what became of it."""
    files = st.file_uploader(
        "Upload .txt, .md, .html or .pdf files, then press Re-index.",
        accept_multiple_files=True,
        key="upload",
        max_upload_size=UPLOAD_LIMIT_MB,
    )
    st.toggle("Replace files with the same name", key="replace", help="Off: an upload never overwrites a different file; it is saved as name-2.md instead.")
    done: dict[str, Upload] = st.session_state.setdefault("uploads", {})
    for file in files:
        if file.file_id not in done:
            done[file.file_id] = save_upload(paths.docs, file.name, file.getvalue(), replace=st.session_state["replace"])
            if done[file.file_id].saved:
                st.session_state.setdefault("unindexed", set()).add(file.file_id)
        result = done[file.file_id]
        say = {"saved": st.success, "replaced": st.success, "renamed": st.warning, "unchanged": st.info}.get(result.outcome, st.error)
        say(escape(result.message))


def reindex_button(engine: Engine, paths: Paths, builder: Indexer) -> None:
    waiting = bool(st.session_state.get("unindexed"))  # highlighted while uploads wait to be indexed
    if st.button("Re-index", key="reindex", type="primary" if waiting else "secondary", icon=":material/sync:", width="stretch"):
        start_reindex(engine, paths, builder)


def start_reindex(engine: Engine, paths: Paths, builder: Indexer) -> None:
    job = builder.start(paths.docs, engine)
    if job is None:
        st.warning("A re-index is already running; wait for it to finish, then try again.")
        return
    st.session_state["job"] = job.number
    st.session_state["unindexed"] = set()


def job_status(builder: Indexer, docs: Path) -> DeltaGenerator:
    """This session's last re-index report, or an empty place for `follow_job` to fill."""
    place = st.empty()
    job = builder.job
    if job is not None and job.number != st.session_state.get("job") and not job.finished:
        place.caption("Another window is re-indexing; answers come from the current index until it finishes.")
    elif job is not None and job.number == st.session_state.get("job") and job.finished:
        with place.container(key="reindex_result"):
            if job.error:
                st.error(escape(job.error))
            elif job.report is not None:
                show_report(job.report, docs)
    return place


def follow_job(builder: Indexer, place: DeltaGenerator) -> None:
    """Last in a page run: while this session's re-index runs, keep its progress bar current,
    then rerun once so the whole page shows the new index. Any click or question interrupts
    this wait (the next run resumes it); the re-index itself goes on in its own thread."""
    job = builder.job
    if job is None or job.number != st.session_state.get("job"):
        return
    while not job.finished:
        label, low, high = STAGES.get(job.stage, ("Starting", 0.0, 0.0))
        fraction = low + (high - low) * (job.done / job.total if job.total else 0.0)
        place.progress(min(fraction, 1.0), text=f"{label} {job.done:,}/{job.total:,}" if job.total > 1 else label)
        time.sleep(0.25)
    if st.session_state.get("job_shown") != job.number:
        st.session_state["job_shown"] = job.number
        st.rerun()


def show_report(report: SyncReport, docs: Path) -> None:
    """The run in one sentence, then one line per file that changed or was skipped (with why)."""
    lines = [(status, path, "") for status in ("added", "updated", "removed") for path in getattr(report, status)]
    lines += [("skipped", path, reason) for path, reason in report.skipped]
    if not lines:
        st.success("Nothing to do: the index already matches the documents folder.")
        return
    counts = {status: len(getattr(report, status)) for status in ("added", "updated", "removed", "unchanged", "skipped")}
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    (st.warning if report.skipped else st.success)(escape(f"Re-indexed in {report.seconds:.1f} s: {summary}."))
    entries = []
    for status, path, reason in lines[:REPORT_LINES]:
        entry = f":{STATUS_COLORS[status]}-badge[{status}] {escape(_relative(path, docs))}"
        entries.append(entry + (f"  \n:gray[{escape(reason)}]" if reason else ""))
    if len(lines) > REPORT_LINES:
        entries.append(f":gray[and {len(lines) - REPORT_LINES:,} more]")
    st.markdown("  \n".join(entries))


def _relative(path: str, docs: Path) -> str:
    try:
        return Path(path).relative_to(docs).as_posix()
    except ValueError:
        return path


def document_list(engine: Engine, paths: Paths, builder: Indexer) -> None:
    records = sorted(engine.index.documents.values(), key=lambda r: (r.title.lower(), r.source))
    with st.expander(f"Indexed documents ({len(records)})", key="documents", icon=":material/description:"):
        if not records:
            st.caption("None yet: upload documents above and press Re-index.")
        for record in records:
            key = doc_key(record.id)
            with st.container(horizontal=True, vertical_alignment="center", wrap=False, key=f"doc_{key}"):
                name = Path(record.source).name
                size = f"{record.chunks} passage{'s' if record.chunks != 1 else ''}"
                st.markdown(f":small[{escape(record.title)}]  \n:gray[:small[{escape(f'{name} · {size}')}]]", width="stretch")
                with st.popover("", icon=":material/delete:", key=f"ask_delete_{key}", help=escape(f"Delete {name}")):
                    st.markdown(escape(f"Delete {name} from {paths.docs}/ and from the index?"))
                    if st.button("Delete", key=f"delete_{key}", type="primary"):
                        delete(engine, paths, builder, record.source)


def doc_key(doc_id: str) -> str:
    """A widget key for a document: stable, and free of characters a CSS class cannot hold."""
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:12]


def delete(engine: Engine, paths: Paths, builder: Indexer, source: str) -> None:
    """Delete the file from the documents folder, then re-index so it leaves the index too."""
    if builder.busy:
        st.warning("A re-index is already running; wait for it to finish, then delete again.")
        return
    try:
        delete_document(paths.docs, source)
    except UploadRefused as exc:
        st.error(escape(str(exc)))
        return
    st.toast(escape(f"Deleted {Path(source).name}; re-indexing."))
    start_reindex(engine, paths, builder)
    st.rerun()


# --- the chat -----------------------------------------------------------------------------------


def chat(engine: Engine, question: str | None) -> None:
    history: list[Turn] = st.session_state.setdefault("history", [])
    if not history:
        st.caption(
            escape(f"Ask a question about the {len(engine.index.documents):,} indexed documents. "
                   "Each answer is quoted from a document and lists the passages it comes from.")
        )
    pages: list[PageSlot] = []
    for turn in history:
        show_turn(engine, turn, pages)
    if question:
        turn = ask(engine, len(history), question, history)
        history.append(turn)
        show_turn(engine, turn, pages)
    if history and st.button("New conversation", key="new_conversation", icon=":material/add_comment:",
                             help="Forget this conversation: the next question is read on its own."):
        st.session_state["history"] = []
        st.rerun()
    for slot in pages:  # after every answer is on the screen: rendering a page never delays one
        show_page(engine, slot)


def ask(engine: Engine, number: int, question: str, history: list[Turn]) -> Turn:
    """The question read with this session's conversation so far (its answers, not its errors)."""
    conversation = [ConversationTurn.of(t.answer) for t in history if t.answer is not None]
    try:
        return Turn(number, question, answer=engine.ask(question, k=st.session_state.get("k", 5), history=conversation))
    except QAError as exc:
        return Turn(number, question, error=str(exc))


def show_turn(engine: Engine, turn: Turn, pages: list[PageSlot]) -> None:
    with st.chat_message("user"):
        st.markdown(escape(turn.question))
        if turn.answer is not None and turn.answer.read_as:
            st.caption(escape(f"read as: {turn.answer.read_as}"))
    with st.chat_message("assistant"), st.container(key=f"turn_{turn.number}"):
        if turn.error is not None:
            st.error(escape(turn.error))
        else:
            show_answer(engine, turn.number, turn.answer, pages)


def show_answer(engine: Engine, number: int, answer: Answer, pages: list[PageSlot]) -> None:
    if answer.notice:
        st.caption(escape(answer.notice))
    source = next((c for c in answer.citations if c.answer_start is not None), None)
    if answer.no_answer:
        st.markdown(f"**{escape(Answer.NO_ANSWER_TEXT)}**")
        if answer.citations:
            st.caption("These are the closest passages found; they may still help, or try other words.")
    else:
        marker = f" :blue-badge[\\[{source.rank}\\]]" if source else ""
        st.markdown(f"### {escape(answer.answer)}{marker}", anchors=False)
        color = "green" if answer.confidence >= 0.75 else "orange"
        st.markdown(f":{color}-badge[{answer.confidence:.0%} confidence]")
        if answer.context:
            st.markdown("> " + context_markup(answer, source))
    for citation in answer.citations:
        show_citation(engine, number, citation, pages)


def context_markup(answer: Answer, source: Citation | None) -> str:
    """The context sentence with the answer highlighted: located through the cited passage's
    offsets (not by searching for the answer, which could match an earlier occurrence)."""
    context = answer.context or ""
    if source is not None and source.answer_start is not None:
        for found in re.finditer(re.escape(context), source.text):
            if found.start() <= source.answer_start and source.answer_end <= found.end():
                offset = found.start()
                return markup(context, [(source.answer_start - offset, source.answer_end - offset, ANSWER_STYLE)])
    return escape(context)


def show_citation(engine: Engine, number: int, citation: Citation, pages: list[PageSlot]) -> None:
    name = Path(citation.source).name
    where = f"page {citation.page}" if citation.page else f"section “{citation.section}”" if citation.section else ""
    label = escape(f"[{citation.rank}] {citation.title} · {name}")
    with st.expander(label, key=f"cite_{number}_{citation.rank}", icon=":material/format_quote:"):
        details = [name, where, f"characters {citation.start:,}–{citation.end:,}"]
        if st.session_state.get("show_scores"):
            details.append(f"score {citation.score:.4f}")
        st.caption(escape(" · ".join(d for d in details if d)))
        marks = [(citation.answer_start, citation.answer_end, ANSWER_STYLE)] if citation.answer_start is not None else []
        st.markdown(markup(citation.text, marks))
        if citation.page is not None:
            pages.append(PageSlot(st.empty(), citation, citation.page, f"page_{number}_{citation.rank}"))
        if st.toggle("View in document", key=f"view_{number}_{citation.rank}"):
            show_document(engine, number, citation, pages)


def show_document(engine: Engine, number: int, citation: Citation, pages: list[PageSlot]) -> None:
    """A wide window of the whole document around the passage, which is highlighted near its top;
    for a PDF, its pages one at a time, starting at the passage's."""
    record = engine.index.documents.get(citation.doc_id)
    if record is not None and record.kind == "pdf" and citation.page is not None:
        try:  # the cached layout checks the file against the index: no extraction on every rerun
            count = len(pdf_layout(record.source, record.sha256)[1].pages)
        except PageUnavailable:
            count = None  # changed or unreadable: the text view below says which
        if count is not None:
            shown = st.number_input(f"Page (of {count})", min_value=1, max_value=count, value=citation.page, step=1,
                                    key=f"pages_{number}_{citation.rank}")
            pages.append(PageSlot(st.empty(), citation, int(shown), f"document_page_{number}_{citation.rank}"))
            return
    try:
        view = engine.document(citation.doc_id)
    except KeyError:
        st.warning("This document is no longer in the index.")
        return
    if view.text is None:
        st.warning(escape(f"{view.source} is gone or cannot be read any more; press Re-index to update the index."))
        return
    text, marks = view.text, []
    start, end = 0, min(len(text), WINDOW_BEFORE + WINDOW_AFTER)
    if view.stale:
        st.warning(escape(f"{view.source} changed since it was indexed, so the passage cannot be marked in it; press Re-index to update."))
    else:
        start = text.rfind("\n", 0, max(0, citation.start - WINDOW_BEFORE)) + 1
        end = min(len(text), citation.end + WINDOW_AFTER)
        marks = _passage_marks(citation, start)
    st.caption(escape(f"{view.title} · characters {start:,}–{end:,} of {len(text):,}"))
    with st.container(height=360 if end - start > 1000 else "content", key=f"document_{citation.rank}_{doc_key(citation.chunk_id)}"):
        st.markdown(markup(text[start:end], marks))


@dataclass(frozen=True)
class PageSlot:
    """A place for a PDF page image, filled once every answer of this run is shown."""

    slot: DeltaGenerator
    citation: Citation
    page: int  # 1-based
    key: str


def show_page(engine: Engine, place: PageSlot) -> None:
    """The page as an image, the cited passage marked on it and its answer span more strongly;
    one sentence and the text view above when it cannot be drawn."""
    citation = place.citation
    record = engine.index.documents.get(citation.doc_id)
    if record is None:
        return
    answer = None
    if citation.answer_start is not None:
        answer = (citation.start + citation.answer_start, citation.start + citation.answer_end)
    marked = place.page == citation.page
    try:
        image = page_image(record.source, record.sha256, place.page - 1, (citation.start, citation.end) if marked else None,
                           answer if marked else None, citation.text if marked else None)
    except PageUnavailable as exc:
        place.slot.caption(escape(f"Page {place.page} cannot be shown as an image: {exc}; the passage's text is above."))
        return
    with place.slot.container(key=place.key):
        st.image(image, caption=escape(f"{Path(record.source).name}, page {place.page}" + (", the passage marked" if marked else "")), output_format="PNG")


class PageUnavailable(Exception):
    pass


@st.cache_resource(max_entries=4, show_spinner=False)
def pdf_layout(source: str, sha256: str):
    """The PDF's text with every character's box: the same text the index holds, so its offsets
    apply. Cached per file version, for all sessions."""
    from qa.documents import sha256 as digest
    from qa.documents.pdf import extract

    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise PageUnavailable(f"{source} cannot be read ({exc.strerror or exc})") from None
    if digest(data) != sha256:
        raise PageUnavailable(f"{Path(source).name} changed since it was indexed (press Re-index)")
    try:
        return data, extract(data, boxes_for=None)
    except QAError as exc:
        raise PageUnavailable(str(exc)) from None


@st.cache_data(max_entries=64, show_spinner="Drawing the page…")
def page_image(source: str, sha256: str, index: int, passage: tuple[int, int] | None, answer: tuple[int, int] | None, text: str | None) -> bytes:
    from qa.documents.pdf import render_page

    data, layout = pdf_layout(source, sha256)
    if passage is not None and layout.text[passage[0] : passage[1]] != text:
        raise PageUnavailable("its text is no longer the one indexed (press Re-index)")
    try:
        return render_page(data, index, layout, passage, answer)
    except Exception as exc:  # PDFium or Pillow on a damaged page: say so, keep the text view
        raise PageUnavailable(f"{type(exc).__name__} while drawing it") from None


def _passage_marks(citation: Citation, offset: int) -> list[Mark]:
    """The passage (shifted by `offset`) highlighted, with its answer span, if any, stronger."""
    start, end = citation.start - offset, citation.end - offset
    if citation.answer_start is None:
        return [(start, end, PASSAGE_STYLE)]
    answer_start, answer_end = start + citation.answer_start, start + citation.answer_end
    return [(start, answer_start, PASSAGE_STYLE), (answer_start, answer_end, ANSWER_STYLE), (answer_end, end, PASSAGE_STYLE)]


if __name__ == "__main__":
    main()
