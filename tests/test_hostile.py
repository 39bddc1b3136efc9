"""Hostile and malformed input: questions, documents, uploads and index files.

Each case states its expected outcome (the README's "Hostile input" table says the same): a
clear message, the rest of the work done, and nothing outside the documents and index folders
opened, written, renamed or removed, which an audit hook watches.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import qa
from ingest.__main__ import main as ingest_main
from ingest.sync import sync
from qa import store
from qa.__main__ import main as qa_main
from qa.documents import MAX_DOCUMENT_BYTES
from qa.errors import BadQuestion, IndexInvalid
from qa.documents.uploads import save_upload
from tests.conftest import ROOT, FakeEmbedder, make_pdf, write

# --- watching the file system -------------------------------------------------------------------

_TOUCHED: list[tuple[str, str]] | None = None  # (event, real path) while a `touched` block runs
_PATH_EVENTS = {"open", "os.rename", "os.replace", "os.link", "os.symlink", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree"}


def _audit(event: str, args: tuple) -> None:
    if _TOUCHED is None or event not in _PATH_EVENTS:
        return
    for arg in args[:2]:
        if isinstance(arg, (str, bytes, os.PathLike)):
            path = os.fsdecode(arg)
            if event != "open":  # these act on a link itself, not on what it points to
                path = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
            _TOUCHED.append((event, os.path.realpath(path) if event == "open" else path))


_HOOKED = False


@contextmanager
def touched() -> Iterator[list[tuple[str, str]]]:
    """Every path this process opens, creates, renames or removes inside the block, resolved
    through symbolic links (audit hooks cannot be removed, so one stays installed, idle)."""
    global _TOUCHED, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    _TOUCHED = events = []
    try:
        yield events
    finally:
        _TOUCHED = None


def outside(events: list[tuple[str, str]], root: Path, *allowed: Path) -> list[tuple[str, str]]:
    """The events under `root` that are not inside one of the `allowed` folders."""
    root = str(root.resolve())
    inside = [str(a.resolve()) for a in allowed]
    return [
        (event, path) for event, path in events
        if (path == root or path.startswith(root + os.sep)) and not any(path == a or path.startswith(a + os.sep) for a in inside)
    ]


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 1, stderr


# --- questions ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("questions")
    docs = root / "docs"
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database begun at Princeton by George A. Miller.\n")
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet won the 2012 challenge with a top-5 error of 15.3%.\n")
    sync([docs], root / "index", embedder=FakeEmbedder())
    return qa.load(root / "index", embedder=FakeEmbedder())


HOSTILE_QUESTIONS = {
    "100 KB": "Who began WordNet? " + "AlexNet " * 12_800,
    "NUL bytes": "Who\x00 began\x00WordNet?\x00",
    "HTML and JS": "<script>alert(1)</script><img src=x onerror=alert(2)> Who began <b>WordNet</b>?",
    "right-to-left": "מי התחיל את WordNet? \u202eoN\u202c من بدأ",
    "emoji": "🤖🔥 Who began WordNet? 👩\u200d🔬",
    "SQL": "'; DROP TABLE chunks; -- Who began WordNet? OR 1=1",
    "undecodable bytes": "Who began WordNet? caf\udcff",  # what a terminal's invalid UTF-8 becomes
}


@pytest.mark.parametrize("question", ["", "   \n\t"], ids=["empty", "blank"])
def test_an_empty_question_is_refused_in_one_sentence(engine, question: str) -> None:
    with pytest.raises(BadQuestion, match=r"^The question is empty: type a question about the documents\.$"):
        engine.ask(question)


@pytest.mark.parametrize("question", list(HOSTILE_QUESTIONS.values()), ids=list(HOSTILE_QUESTIONS))
def test_a_hostile_question_is_answered_from_the_documents(engine, question: str) -> None:
    version, chunks = engine.index.version, list(engine.index.chunks)
    answer = engine.ask(question)
    assert "\x00" not in answer.question and len(answer.question) <= 2000
    assert answer.notice == ("The question was cut to its first 2,000 characters." if len(question) > 2000 else None)
    assert 0.0 <= answer.confidence <= 1.0 and answer.no_answer == (answer.answer is None)
    assert answer.citations
    for citation in answer.citations:  # quoted from the files, never from the question
        assert Path(citation.source).read_text(encoding="utf-8")[citation.start : citation.end] == citation.text
    assert (engine.index.version, engine.index.chunks) == (version, chunks)  # nothing was changed


CLI_DRIVER = """
import runpy, sys
sys.path.insert(0, {root!r})
import qa.engine
from tests.conftest import FakeEmbedder
qa.engine.load_embedder = lambda spec: FakeEmbedder()  # the real `python -m qa`, without the model
sys.argv = ["qa", *sys.argv[1:]]
runpy.run_module("qa", run_name="__main__", alter_sys=True)
"""


def test_hostile_questions_through_the_command_line(engine) -> None:
    """One `python -m qa ask - --json` run, one question per line: one JSON answer each."""
    questions = [q.replace("\n", " ") for q in HOSTILE_QUESTIONS.values()]
    run = subprocess.run(
        [sys.executable, "-c", CLI_DRIVER.format(root=str(ROOT)), "ask", "-", "--json", "--index", str(engine.index.directory)],
        input="\n".join(questions).encode("utf-8", "surrogateescape"), capture_output=True, timeout=120,
    )
    assert run.returncode == 0 and run.stderr == b""
    answers = [json.loads(line) for line in run.stdout.decode("utf-8", "replace").splitlines()]
    assert len(answers) == len(questions)
    assert all(a["citations"] and (a["answer"] is None) == a["no_answer"] for a in answers)


def test_an_empty_question_on_the_command_line_is_one_sentence(engine, capsys) -> None:
    assert qa_main(["ask", "", "--index", str(engine.index.directory)], embedder=engine.embedder) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "error: The question is empty: type a question about the documents.\n"


# --- documents ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_library(tmp_path_factory: pytest.TempPathFactory):
    """Two good documents among every kind of bad one, indexed once while the file system is watched."""
    root = tmp_path_factory.mktemp("documents")
    docs, index_dir, elsewhere = root / "docs", root / "index", root / "elsewhere"
    write(docs / "good.md", "# Good\n\nAlexNet won the 2012 challenge.\n")
    write(docs / "also-good.txt", "Also good\n\nWordNet was begun at Princeton.\n")
    for name, content in DOCUMENTS.items():
        if content is not None:
            write(docs / name, content)
    with open(docs / "huge.txt", "wb") as out:  # 50 MB on one line, sparse so it costs nothing
        out.write(b"one line " * 100)
        out.truncate(50 * 2**20)
    make_pdf(docs / "locked.pdf", ["Locked text about kangaroos."])
    _encrypt(docs / "locked.pdf")
    make_pdf(root / "whole.pdf", ["Some words on a page about wombats."])
    write(docs / "truncated.pdf", (root / "whole.pdf").read_bytes()[:600])
    from pypdf import PdfWriter

    scan = PdfWriter()
    scan.add_blank_page(width=200, height=200)
    scan.write(docs / "scan.pdf")
    write(elsewhere / "secret.md", "# Secret\n\nThe platypus password is outside.\n")
    write(elsewhere / "folder" / "inner.md", "# Inner\n\nThe echidna is outside too.\n")
    (docs / "link.md").symlink_to(elsewhere / "secret.md")
    (docs / "linked-folder").symlink_to(elsewhere / "folder")
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    before = listing(elsewhere)
    with touched() as events:
        report = sync([docs], index_dir, embedder=FakeEmbedder())
    assert listing(elsewhere) == before
    return docs, index_dir, report, outside(events, root, docs, index_dir), events


def _encrypt(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(path).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as out:
        writer.write(out)


DOCUMENTS: dict[str, str | bytes | None] = {  # None: made by the fixture
    "binary.txt": bytes(range(256)) * 64,
    "undecodable.txt": b"caf\xc3 \x81\x8d\x8f\x90\x9d na\xefve",
    "latin-1.txt": "Café crème, naïve façade.\n".encode("cp1252"),
    "one-line.txt": "word " * 60_000,  # 300 KB without a line break
    "huge.txt": None,
    "scan.pdf": None,
    "truncated.pdf": None,
    "locked.pdf": None,
    "script.html": (
        "<html><head><script>var stolen = 'zebrafish-cookie';</script><style>p{color:red}</style></head>"
        "<body><p onclick=\"stealCookies('onclick-payload')\" onmouseover='x()'>Visible paragraph.</p>"
        "<img src=x onerror=\"alert('onerror-payload')\"><a href=\"javascript:alert('href-payload')\">a link</a></body></html>"
    ),
    "deep.html": "<div>" * 100_000 + "Deep text survives." + "</div>" * 100_000,
    "unclosed.html": "<p><b><i>" * 30_000 + "Unclosed text survives.",
    "empty.txt": b"",
    "link.md": None,
    "pipe.txt": None,
}

EXPECTED: dict[str, str] = {  # "indexed", or the reason it is skipped
    "binary.txt": "binary data, not text",
    "undecodable.txt": "text in an unknown encoding (not UTF-8 or Windows-1252)",
    "latin-1.txt": "indexed",
    "one-line.txt": "indexed",
    "huge.txt": "larger than 25 MB",
    "scan.pdf": "PDF has no text layer (scanned images need OCR first)",
    "truncated.pdf": "unreadable PDF",
    "locked.pdf": "encrypted PDF (it needs a password)",
    "script.html": "indexed",
    "deep.html": "indexed",
    "unclosed.html": "indexed",
    "empty.txt": "empty file",
    "link.md": "a symbolic link to a file outside the documents folder",
    "pipe.txt": "not a regular file",
}


@pytest.mark.parametrize("name", list(EXPECTED), ids=list(EXPECTED))
def test_each_hostile_document_is_indexed_or_skipped_with_its_reason(hostile_library, name: str) -> None:
    docs, index_dir, report, _, _ = hostile_library
    skipped = {Path(path).name: reason for path, reason in report.skipped}
    if EXPECTED[name] == "indexed":
        assert name in store.load_index(index_dir).documents and name not in skipped
    else:
        assert skipped[name].startswith(EXPECTED[name])


def test_the_good_documents_are_indexed_whatever_else_is_in_the_folder(hostile_library) -> None:
    docs, index_dir, report, _, _ = hostile_library
    index = store.load_index(index_dir)
    assert {"good.md", "also-good.txt"} <= set(index.documents)
    assert set(index.documents) == {"good.md", "also-good.txt"} | {n for n, e in EXPECTED.items() if e == "indexed"}
    assert len(report.skipped) == len([e for e in EXPECTED.values() if e != "indexed"])
    for chunk in index.chunks:
        if chunk.doc_id.endswith((".md", ".txt")):
            assert (docs / chunk.doc_id).read_bytes().decode("utf-8", "replace")[chunk.start : chunk.end] == chunk.text or chunk.doc_id == "latin-1.txt"
    assert "Café crème" in index.chunks[index.chunk_ranges["latin-1.txt"][0]].text


def test_scripts_and_event_handlers_are_not_indexed(hostile_library) -> None:
    _, index_dir, _, _, _ = hostile_library
    text = " ".join(c.text for c in store.load_index(index_dir).chunks if c.doc_id == "script.html")
    assert " ".join(text.split()) == "Visible paragraph. a link"
    assert not re.search(r"zebrafish|payload|stealCookies|color:red|alert", text)


def test_nothing_outside_the_two_folders_is_read_or_written(hostile_library) -> None:
    docs, index_dir, _, strays, events = hostile_library
    assert strays == []
    text = " ".join(c.text for c in store.load_index(index_dir).chunks)
    assert "platypus" not in text and "echidna" not in text
    huge = str((docs / "huge.txt").resolve())
    assert events and not any(path == huge for _, path in events)  # too large: never even opened


def test_the_command_line_lists_each_skipped_file_and_finishes(hostile_library, tmp_path, capsys) -> None:
    docs, _, _, _, _ = hostile_library
    assert ingest_main([str(docs), "--index", str(tmp_path / "index")], embedder=FakeEmbedder()) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert sorted(line.split(": ", 1)[0] for line in lines[:-1]) == sorted(f"skipped {docs.as_posix()}/{n}" for n, e in EXPECTED.items() if e != "indexed")
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'index'))}: 7 added, .* 9 skipped; .*", lines[-1])


# --- uploads ------------------------------------------------------------------------------------

UPLOADS = [  # (name as the browser sends it, outcome, file it lands in)
    ("../../etc/passwd.txt", "renamed", "passwd.txt"),
    ("..\\..\\x.md", "renamed", "x.md"),
    ("/etc/cron.d/job.md", "renamed", "job.md"),
    ("C:\\Windows\\win.ini.txt", "renamed", "win.ini.txt"),
    ("\\\\server\\share\\unc.html", "renamed", "unc.html"),
    ("docs/../../up.md", "renamed", "up.md"),
    ("CON.txt", "renamed", "CON_.txt"),
    ("nul.md", "renamed", "nul_.md"),
    ("com1.tar.pdf", "renamed", "com1_.tar.pdf"),
    ("NUL", "refused", None),
    (".", "refused", None),
    ("..", "refused", None),
    ("", "refused", None),
    ("a\x00b.txt", "renamed", "ab.txt"),
    ("evil.txt\x00.exe", "refused", None),
    (".bashrc.md", "renamed", "bashrc.md"),
    ("trap.md", "renamed", "trap-2.md"),  # trap.md is a link out of the folder: never written through
]


@pytest.mark.parametrize("name, outcome, stored", UPLOADS, ids=[repr(u[0]) for u in UPLOADS])
def test_a_hostile_upload_name_stays_inside_the_folder(tmp_path: Path, name: str, outcome: str, stored: str | None) -> None:
    docs, elsewhere = tmp_path / "docs", tmp_path / "elsewhere"
    write(elsewhere / "target.md", "keep me")
    docs.mkdir()
    (docs / "trap.md").symlink_to(elsewhere / "target.md")
    before = listing(elsewhere)
    with touched() as events:
        upload = save_upload(docs, name, b"# Uploaded\n", replace=True)
    assert (upload.outcome, upload.path) == (outcome, docs / stored if stored else None)
    assert upload.message and "\n" not in upload.message and "\x00" not in upload.message
    assert outside(events, tmp_path, docs) == []
    assert listing(elsewhere) == before
    assert sorted(os.listdir(docs)) == sorted({"trap.md", *([stored] if stored else [])})


def test_duplicate_and_oversize_uploads(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    with touched() as events:
        first = save_upload(docs, "a.md", b"first")
        same = save_upload(docs, "a.md", b"first")
        other = save_upload(docs, "a.md", b"second")
        big = save_upload(docs, "big.txt", b"x" * (MAX_DOCUMENT_BYTES + 1))
        empty = save_upload(docs, "empty.md", b"")
    assert [u.outcome for u in (first, same, other, big, empty)] == ["saved", "unchanged", "renamed", "refused", "refused"]
    assert other.path == docs / "a-2.md" and big.message == "big.txt is 25.0 MB, over the 25 MB limit for one document."
    assert sorted(os.listdir(docs)) == ["a-2.md", "a.md"]
    assert outside(events, tmp_path, docs) == []


# --- index files --------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs / "a.md", "# A\n\nAlexNet won the 2012 challenge.\n")
    write(docs / "b.txt", "B\n\nWordNet was begun at Princeton.\n")
    sync([docs], tmp_path / "index", embedder=FakeEmbedder())
    return tmp_path / "index", tmp_path / "index" / store.current_version(tmp_path / "index")


def _rehash(folder: Path, change=None) -> None:
    """Record the files' current sizes and checksums in the manifest (after `change`, if given),
    and the manifest's checksum: damage the checksums alone would not catch."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if change:
        change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "manifest.sha256").write_text(hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest())


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    path.write_bytes(change(path.read_bytes()))


def _pickled(path: Path) -> None:
    path.write_bytes(pickle.dumps({"payload": os.system}))


def _object_array(path: Path) -> None:
    np.save(path, np.array([{"payload": 1}], dtype=object), allow_pickle=True)


def _set_title(manifest: dict) -> None:
    next(iter(manifest["documents"].values()))["title"] = "Edited"


INDEX_DAMAGE = {  # how the index is damaged -> what the message says
    "truncated dense.faiss": (lambda f: _edit(f, "dense.faiss", lambda b: b[: len(b) // 2]), "dense.faiss does not match"),
    "truncated dense.faiss, checksums updated": (lambda f: (_edit(f, "dense.faiss", lambda b: b[: len(b) // 2]), _rehash(f)), "dense.faiss cannot be read"),
    "manifest edited (a title)": (lambda f: _edit(f, "manifest.json", lambda b: b.replace(b'"title": "A"', b'"title": "Edited"')), "was edited or damaged"),
    "manifest edited, its checksum too": (lambda f: _rehash(f, lambda m: m["counts"].update(chunks=99)), "2 chunk records, 2 vectors and 99 in the manifest"),
    "manifest lists a file outside": (lambda f: _rehash(f, lambda m: m["files"].update({"../../elsewhere.txt": {"size": 1, "sha256": "0"}})), "../../elsewhere.txt is missing"),
    "manifest drops a file": (lambda f: _rehash(f, lambda m: m["files"].pop("dense.faiss")), "dense.faiss is not listed"),
    "manifest with a wrong type": (lambda f: _rehash(f, lambda m: m["files"].update({"dense.faiss": "abc"})), "dense.faiss does not match"),
    "manifest from a newer format": (lambda f: _rehash(f, lambda m: m.update(format_version=store.FORMAT_VERSION + 1)), "newer version of this program"),
    "manifest.json is not JSON": (lambda f: _edit(f, "manifest.json", lambda b: b"\x80\x04not json"), "not valid JSON"),
    "fewer chunk records than vectors": (lambda f: (_edit(f, "chunks.jsonl", lambda b: b.split(b"\n", 1)[1]), _rehash(f)), "1 chunk records, 2 vectors"),
    "more vectors than chunk records": (lambda f: (np.save(f / "vectors.npy", np.zeros((9, 64), np.float32)), _rehash(f)), "2 chunk records, 9 vectors"),
    "chunk offsets do not fit the text": (lambda f: (_edit(f, "chunks.jsonl", lambda b: b.replace(b'"start": 0', b'"start": 5', 1)), _rehash(f)), "offsets that do not fit"),
    "vectors.npy is a pickle": (lambda f: (_object_array(f / "vectors.npy"), _rehash(f)), "vectors.npy is not a plain array of numbers"),
    "dense.faiss is a pickle": (lambda f: (_pickled(f / "dense.faiss"), _rehash(f)), "dense.faiss cannot be read"),
    "chunks.jsonl is a pickle": (lambda f: (_pickled(f / "chunks.jsonl"), _rehash(f)), "unreadable records"),
    "a bm25 array is a pickle": (lambda f: (_object_array(f / "bm25" / "data.csc.index.npy"), _rehash(f)), "bm25: Object arrays cannot be loaded when allow_pickle=False"),
    "an extra file in the version": (lambda f: _pickled(f / "extra.pkl"), "extra.pkl is not listed"),
    "a file swapped for a link": (lambda f: (f / "chunks.jsonl").unlink() or (f / "chunks.jsonl").symlink_to("/etc/hostname"), "chunks.jsonl is missing"),
    "CURRENT points outside": (lambda f: (f.parent / "CURRENT").write_text("../../elsewhere\n"), "points to a missing version"),
}


@pytest.mark.parametrize("damage, message", list(INDEX_DAMAGE.values()), ids=list(INDEX_DAMAGE))
def test_a_damaged_index_is_refused_with_the_rebuild_command(built, capsys, damage, message: str) -> None:
    index_dir, folder = built
    damage(folder)
    for load in (store.load_index, lambda d: qa.load(d, embedder=FakeEmbedder())):
        with pytest.raises(IndexInvalid, match=re.escape(message)) as error:
            with touched() as events:
                load(index_dir)
        assert str(error.value).endswith("`python -m ingest --rebuild`.")
        assert outside(events, index_dir.parent, index_dir) == []
    assert qa_main(["ask", "Who won?", "--index", str(index_dir)], embedder=FakeEmbedder()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "--rebuild" in err
    no_traceback(err)


def test_a_damaged_index_through_the_real_command_line(built) -> None:
    index_dir, folder = built
    _edit(folder, "dense.faiss", lambda b: b[:100])
    run = subprocess.run([sys.executable, "-m", "qa", "ask", "Who won?", "--index", str(index_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert re.fullmatch(r"error: The index in .* is damaged \(dense\.faiss does not match its recorded size and checksum\); rebuild it with `python -m ingest --rebuild`\.\n", run.stderr)


def test_a_flipped_byte_in_any_index_file_is_refused(built) -> None:
    index_dir, folder = built
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert {"manifest.json", "manifest.sha256", "chunks.jsonl", "vectors.npy", "dense.faiss", "bm25/counts.values.npy"} <= set(names)
    for name in names:
        original = (folder / name).read_bytes()
        for at in sorted({0, len(original) // 2, len(original) - 1}):
            flipped = bytearray(original)
            flipped[at] ^= 0x01
            (folder / name).write_bytes(bytes(flipped))
            with pytest.raises(IndexInvalid, match="--rebuild"):
                store.load_index(index_dir)
        (folder / name).write_bytes(original)
    store.load_index(index_dir)


def test_nothing_in_the_index_is_unpickled(built, monkeypatch) -> None:
    """No pickle when loading or answering: pickle is disabled, and numpy refuses object arrays."""
    index_dir, _ = built

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    qa.load(index_dir, embedder=FakeEmbedder()).ask("Who won the 2012 challenge?")
    sources = [p for folder in ("qa", "ingest") for p in (ROOT / folder).rglob("*.py")] + [ROOT / "app.py"]
    loads = 0
    for path in sources:
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"\bimport (c?pickle|joblib|dill|shelve|marshal)\b|allow_pickle=True|torch\.load|trust_remote_code=True", code), path
        for call in re.findall(r"np\.load\([^)]*\)|\.load\(str\(directory\)[^)]*\)", code):
            assert "allow_pickle=False" in call, (path, call)
            loads += 1
    assert loads >= 3  # the vector and BM25 arrays at least
