"""Incremental sync and the index format, with the fake embedder."""

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import ingest.sync as sync_module
from ingest.sync import sync
from qa import store
from qa.errors import IndexBusy, IndexInvalid, IndexNotFound, ModelError, QAError
from tests.conftest import FakeEmbedder, make_pdf, write


def build(docs, index, embedder, **kw):
    return sync([docs], index, embedder=embedder, **kw)


def test_first_build_indexes_every_supported_file(small_corpus, tmp_path, fake_embedder):
    make_pdf(small_corpus / "paper.pdf", ["Page one on perceptrons.", "Page two on GPUs."])
    report = build(small_corpus, tmp_path / "index", fake_embedder)
    assert sorted(report.added) == sorted(f"{small_corpus.as_posix()}/{n}" for n in ["alexnet.md", "wordnet.txt", "history.html", "paper.pdf"])
    index = store.load_index(tmp_path / "index")
    assert set(index.documents) == {"alexnet.md", "wordnet.txt", "history.html", "paper.pdf"}
    assert report.chunks == len(index.chunks) == index.vectors.shape[0] == index.dense.ntotal
    assert index.documents["history.html"].title == "History"
    assert {c.page for c in index.chunks if c.doc_id == "paper.pdf"} == {1, 2}
    for chunk in index.chunks:
        if chunk.doc_id.endswith((".md", ".txt")):
            assert (small_corpus / chunk.doc_id).read_text()[chunk.start : chunk.end] == chunk.text


def test_add_update_delete_and_unchanged(small_corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)
    before = store.load_index(index_dir)
    wordnet_vectors = before.block("wordnet.txt").vectors

    write(small_corpus / "new.md", "# New\n\nA new document about ResNet.\n")
    write(small_corpus / "alexnet.md", "# AlexNet\n\nEdited: AlexNet had about 60 million parameters.\n")
    (small_corpus / "history.html").unlink()
    report = build(small_corpus, index_dir, fake_embedder)
    src = small_corpus.as_posix()
    assert report.added == [f"{src}/new.md"]
    assert report.updated == [f"{src}/alexnet.md"]
    assert report.removed == [f"{src}/history.html"]
    assert report.unchanged == [f"{src}/wordnet.txt"]
    assert report.embedded_chunks == 2  # only the new and the edited document

    after = store.load_index(index_dir)
    assert set(after.documents) == {"alexnet.md", "new.md", "wordnet.txt"}
    assert not any("15.3%" in c.text for c in after.chunks)
    assert np.array_equal(after.block("wordnet.txt").vectors, wordnet_vectors)


def test_a_changed_document_is_parsed_once_unless_the_changes_are_too_large_to_hold(small_corpus, tmp_path, fake_embedder, monkeypatch):
    make_pdf(small_corpus / "paper.pdf", ["Page one on perceptrons.", "Page two on GPUs."])
    loads = []
    real = sync_module.load_document
    monkeypatch.setattr(sync_module, "load_document", lambda path, *a, **kw: loads.append(path.name) or real(path, *a, **kw))
    build(small_corpus, tmp_path / "held", fake_embedder)
    assert sorted(loads) == ["alexnet.md", "history.html", "paper.pdf", "wordnet.txt"]  # once each: a PDF is slow to parse

    loads.clear()
    monkeypatch.setattr(sync_module, "KEEP_PARSED_CHARS", 0)  # past the budget: parsed again as it is embedded
    build(small_corpus, tmp_path / "streamed", fake_embedder)
    assert sorted(loads) == sorted(["alexnet.md", "history.html", "paper.pdf", "wordnet.txt"] * 2)
    held, streamed = store.load_index(tmp_path / "held"), store.load_index(tmp_path / "streamed")
    assert [(c.id, c.text, c.start, c.page) for c in held.chunks] == [(c.id, c.text, c.start, c.page) for c in streamed.chunks]
    assert np.array_equal(held.vectors, streamed.vectors)


def test_unchanged_run_embeds_nothing_and_loads_no_model(small_corpus, tmp_path, fake_embedder, monkeypatch):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)
    version = store.current_version(index_dir)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sync_module, "load_embedder", no_model)
    monkeypatch.setattr(sync_module.store, "load_index", no_model)
    report = sync([small_corpus], index_dir)  # no embedder given: it would have to load one
    assert report.embedded_chunks == 0 and len(report.unchanged) == 3
    assert store.current_version(index_dir) == version  # nothing written


def test_same_files_give_same_chunk_ids_and_vectors_as_a_fresh_build(small_corpus, tmp_path, fake_embedder):
    build(small_corpus, tmp_path / "a", fake_embedder)
    write(small_corpus / "extra.md", "# Extra\n\nMore.\n")
    build(small_corpus, tmp_path / "a", fake_embedder)
    build(small_corpus, tmp_path / "b", fake_embedder)
    a, b = store.load_index(tmp_path / "a"), store.load_index(tmp_path / "b")
    assert [(c.id, c.text) for c in a.chunks] == [(c.id, c.text) for c in b.chunks]
    assert np.allclose(a.vectors, b.vectors)


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(small_corpus, tmp_path, fake_embedder):
    write(small_corpus / "empty.md", "")
    write(small_corpus / "binary.txt", b"\x00\x01\x02" * 100)
    write(small_corpus / "photo.jpg", b"\xff\xd8\xff")
    write(small_corpus / "broken.pdf", b"%PDF-1.7 garbage")
    write(small_corpus / "latin.txt", b"\x81\x8d\x8f undecodable")
    outside = write(tmp_path / "secret.md", "# Secret\n\nOutside the folder.\n")
    os.symlink(outside, small_corpus / "link.md")
    report = build(small_corpus, tmp_path / "index", fake_embedder)
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert set(reasons) == {"empty.md", "binary.txt", "photo.jpg", "broken.pdf", "latin.txt", "link.md"}
    assert "outside" in reasons["link.md"]
    assert len(report.added) == 3
    assert "Secret" not in json.dumps([c.text for c in store.load_index(tmp_path / "index").chunks])


def test_a_file_skipped_for_what_it_holds_is_not_parsed_again_until_it_changes(small_corpus, tmp_path, fake_embedder, monkeypatch):
    broken = write(small_corpus / "broken.pdf", b"%PDF-1.7 garbage")
    index_dir = tmp_path / "index"
    first = build(small_corpus, index_dir, fake_embedder)
    loads = []
    real = sync_module.load_document
    monkeypatch.setattr(sync_module, "load_document", lambda path, *a, **kw: loads.append(path.name) or real(path, *a, **kw))

    again = build(small_corpus, index_dir, fake_embedder)
    assert again.skipped == first.skipped and (again.added, again.updated, again.removed) == ([], [], [])
    assert loads == [], "the unchanged damaged file was parsed again"

    write(broken, b"%PDF-1.7 other garbage")
    changed = build(small_corpus, index_dir, fake_embedder)
    assert loads == ["broken.pdf"] and dict(changed.skipped) == dict(first.skipped)

    loads.clear()
    build(small_corpus, index_dir, fake_embedder, rebuild=True)
    assert "broken.pdf" in loads, "--rebuild reads every file again"

    loads.clear()
    monkeypatch.setattr(sync_module, "loaders_version", lambda: "an upgrade")
    upgraded = build(small_corpus, index_dir, fake_embedder)
    assert loads == ["broken.pdf"], "new loaders read again a file the old ones skipped"
    assert dict(upgraded.skipped) == dict(first.skipped)
    loads.clear()
    build(small_corpus, index_dir, fake_embedder)
    assert loads == [], "the new loaders' verdict is remembered"

    make_pdf(broken, ["Now a real paper on perceptrons."])
    fixed = build(small_corpus, index_dir, fake_embedder)
    assert [Path(p).name for p in fixed.added] == ["broken.pdf"] and fixed.skipped == []
    assert not (index_dir / store.SKIPPED).exists()


def test_a_damaged_skip_record_only_costs_a_second_look(small_corpus, tmp_path, fake_embedder):
    write(small_corpus / "empty.md", "")
    index_dir = tmp_path / "index"
    first = build(small_corpus, index_dir, fake_embedder)
    (index_dir / store.SKIPPED).write_text("{not json", encoding="utf-8")
    again = build(small_corpus, index_dir, fake_embedder)
    assert again.skipped == first.skipped
    assert store.read_skipped(index_dir).keys() == {"empty.md"}


def test_a_missing_documents_path_stops_without_touching_the_index(small_corpus, tmp_path, fake_embedder):
    build(small_corpus, tmp_path / "index", fake_embedder)
    with pytest.raises(QAError, match="does not exist"):
        sync([tmp_path / "nope"], tmp_path / "index", embedder=fake_embedder)
    assert len(store.load_index(tmp_path / "index").documents) == 3


def test_model_mismatch_stops_and_names_the_rebuild(small_corpus, tmp_path, fake_embedder):
    build(small_corpus, tmp_path / "index", fake_embedder)
    other = FakeEmbedder(dimension=32, name="other-model")
    with pytest.raises(ModelError, match="--rebuild"):
        build(small_corpus, tmp_path / "index", other)
    build(small_corpus, tmp_path / "index", other, rebuild=True)
    assert store.load_index(tmp_path / "index").model.name == "other-model"


def test_changed_chunk_settings_rechunk_everything(small_corpus, tmp_path, fake_embedder):
    from qa.documents.chunking import ChunkSettings

    build(small_corpus, tmp_path / "index", fake_embedder)
    report = build(small_corpus, tmp_path / "index", fake_embedder, settings=ChunkSettings(60, 10))
    assert len(report.updated) == 3
    assert store.load_index(tmp_path / "index").settings.chunk_size == 60


def test_writer_lock_refuses_a_second_writer(small_corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    with store.writer_lock(index_dir):
        with pytest.raises(IndexBusy, match="Another ingest"):
            build(small_corpus, index_dir, fake_embedder)
    build(small_corpus, index_dir, fake_embedder)  # free again


def test_crash_mid_write_leaves_the_old_index_and_the_next_run_cleans_up(small_corpus, tmp_path, fake_embedder, monkeypatch):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)
    old_version = store.current_version(index_dir)
    write(small_corpus / "new.md", "# New\n\nNew text.\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while the version was half written

    monkeypatch.setattr(store.os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        build(small_corpus, index_dir, fake_embedder)
    monkeypatch.undo()
    assert list(index_dir.glob(".staging-*"))  # debris of the crash
    index = store.load_index(index_dir)
    assert index.version == old_version and "new.md" not in index.documents

    report = build(small_corpus, index_dir, fake_embedder)
    assert report.added == [f"{small_corpus.as_posix()}/new.md"]
    assert not list(index_dir.glob(".staging-*"))
    assert len([p for p in index_dir.iterdir() if p.name.startswith("v")]) == 2  # live and previous


def test_old_versions_are_removed(small_corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    for i in range(4):
        write(small_corpus / f"n{i}.md", f"# N{i}\n\ntext {i}\n")
        build(small_corpus, index_dir, fake_embedder)
    assert len([p for p in index_dir.iterdir() if p.name.startswith("v")]) == 2


def test_unwritable_index_dir_gives_one_clear_message(small_corpus, tmp_path, fake_embedder):
    blocker = write(tmp_path / "file", "not a folder")
    with pytest.raises(IndexBusy, match="Cannot write"):
        build(small_corpus, blocker / "index", fake_embedder)


# --- loading validates everything ------------------------------------------------------------


@pytest.fixture
def built(small_corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)
    return index_dir, index_dir / store.current_version(index_dir)


def test_missing_index_names_the_command(tmp_path):
    with pytest.raises(IndexNotFound, match="python -m ingest"):
        store.load_index(tmp_path / "nothing")


def _edit_manifest(folder, change):
    """Edit the manifest and its checksum, so the checks behind the checksum are reached."""
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "manifest.sha256").write_text(hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda f: _edit_manifest(f, lambda m: m.update(format_version=99)), "newer version"),
        (lambda f: _edit_manifest(f, lambda m: m["documents"]["wordnet.txt"].update(sentences=2)), "unreadable records"),  # not a format-3 field
        (lambda f: _edit_manifest(f, lambda m: m["counts"].update(chunks=999)), "chunk records"),
        (lambda f: (f / "dense.faiss").write_bytes((f / "dense.faiss").read_bytes()[:100]), "dense.faiss"),
        (lambda f: (f / "chunks.jsonl").write_text((f / "chunks.jsonl").read_text().split("\n", 1)[1]), "chunks.jsonl"),
        (lambda f: (f / "vectors.npy").unlink(), "vectors.npy is missing"),
        (lambda f: (f.parent / "CURRENT").write_text("v999999-abcdef\n"), "missing version"),
    ],
)
def test_damaged_index_fails_with_the_rebuild_command(built, damage, message):
    index_dir, folder = built
    damage(folder)
    with pytest.raises(IndexInvalid, match=message) as error:
        store.load_index(index_dir)
    assert "python -m ingest --rebuild" in str(error.value)


def test_rebuild_repairs_a_damaged_index(built, small_corpus, fake_embedder):
    index_dir, folder = built
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IndexInvalid):
        build(small_corpus, index_dir, fake_embedder)
    build(small_corpus, index_dir, fake_embedder, rebuild=True)
    assert len(store.load_index(index_dir).documents) == 3


# --- streaming writes and reuse of unchanged rows ------------------------------------------------


def test_unchanged_documents_are_copied_with_their_checksums_not_re_embedded(small_corpus, tmp_path):
    embedder = FakeEmbedder()
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, embedder)
    before = store.read_manifest(index_dir)[1]["documents"]
    write(small_corpus / "beta.md", "# Beta\n\nA document whose rows go between the others.\n")
    report = build(small_corpus, index_dir, embedder)
    after = store.read_manifest(index_dir)[1]["documents"]
    assert report.embedded_chunks == 1
    for doc_id in ["alexnet.md", "wordnet.txt", "history.html"]:
        assert after[doc_id]["rows"] == before[doc_id]["rows"]  # carried over, not recomputed
    index = store.load_index(index_dir)  # and every checksum still holds
    assert [c.doc_id for c in index.chunks] == sorted(c.doc_id for c in index.chunks)


def test_a_damaged_row_of_one_document_is_found(built):
    index_dir, folder = built
    data = bytearray((folder / "vectors.npy").read_bytes())
    data[-3] ^= 0xFF  # the last document's last vector
    (folder / "vectors.npy").write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match="vectors.npy does not match its recorded checksums"):
        store.load_index(index_dir)


def test_lexical_index_from_counts_equals_bm25s_own(small_corpus, tmp_path, fake_embedder):
    import bm25s

    from qa.store.lexical import LexicalIndex, StoredCounts, TermCounts, Tokenizer

    texts = [c.text for c in build(small_corpus, tmp_path / "index", fake_embedder) and store.load_index(tmp_path / "index").chunks]
    texts += ["GPU error rates fell", "", "Princeton's WordNet and ImageNet"]
    tokenize = Tokenizer()
    reference = bm25s.BM25(method="lucene")
    reference.index([tokenize(t) or [""] for t in texts], show_progress=False)
    built_here = LexicalIndex.build(texts)
    built_here.save(tmp_path / "bm25")
    partly_copied = TermCounts()
    partly_copied.add_texts(texts[:2])
    partly_copied.add_stored(StoredCounts.open(tmp_path / "bm25"), 2, len(texts))
    for question in ["Who began WordNet at Princeton?", "GPU error", "top-5 error of AlexNet", "nothing known here"]:
        ids = reference.get_tokens_ids(tokenize(question))
        expected = reference.get_scores_from_ids(ids) if ids else np.zeros(len(texts), np.float32)
        assert np.array_equal(built_here.scores(question), expected)
        assert np.array_equal(partly_copied.build().scores(question), expected)


def test_progress_reports_chunks_with_an_estimated_total(small_corpus, tmp_path, fake_embedder):
    seen = []
    build(small_corpus, tmp_path / "index", fake_embedder, progress=lambda stage, done, total: seen.append((stage, done, total)))
    embedding = [(done, total) for stage, done, total in seen if stage == "embedding"]
    assert embedding and embedding[-1][0] == embedding[-1][1] == len(store.load_index(tmp_path / "index").chunks)
    assert all(done <= total for done, total in embedding)


# --- format 3, and the formats before it -----------------------------------------------------------


def test_a_version_holds_chunk_rows_and_their_indexes_only(built):
    index_dir, folder = built
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {n.split("/")[0] for n in names} == {"manifest.json", "manifest.sha256", "chunks.jsonl", "vectors.npy", "dense.faiss", "bm25"}
    manifest = store.read_manifest(index_dir)[1]
    assert manifest["format_version"] == store.FORMAT_VERSION == 3
    assert set(manifest["counts"]) == {"documents", "chunks"}
    for record in manifest["documents"].values():
        assert set(record["rows"]) == set(store.ROW_FILES) and not set(record) & set(store.OLD_RECORD_FIELDS)


def _as_old_format(index_dir: Path, format_version: int, per_document_rows: bool = True) -> None:
    """Turn the live version into what a format-1 or format-2 writer wrote: besides the chunk
    rows, each document's sentence spans and vectors (here one sentence per chunk), and in
    format 2 each sentence's word-piece count and the pieces in a segment file. Without
    `per_document_rows`, as format 1 before 1.1: whole-file SHA-256s, no rows per document."""
    import zlib

    folder = index_dir / store.current_version(index_dir)
    manifest = json.loads((folder / store.MANIFEST).read_text())
    index = store.load_index(index_dir)
    rng = np.random.default_rng(0)
    arrays = {
        "sentences.npy": np.array([[c.start, c.end] for c in index.chunks], np.int64).reshape(-1, 2),
        "sentence_vectors.npy": np.array(index.vectors),
    }
    if format_version >= 2:
        arrays["sentence_tokens.npy"] = np.full((len(index.chunks), 1), 3, np.int64)
        segment = "pieces/p0123456789ab.npy"
        (folder / "pieces").mkdir()
        np.save(folder / segment, rng.integers(-127, 128, (3 * len(index.chunks), 128)).astype(np.int8))
        manifest["files"][segment] = {"size": (folder / segment).stat().st_size, "crc32": f"{zlib.crc32((folder / segment).read_bytes()):08x}"}
    for name, array in arrays.items():
        np.save(folder / name, array)
        manifest["files"][name] = {"size": (folder / name).stat().st_size}
        data = (folder / name).read_bytes()[-array.nbytes :] if array.nbytes else b""
        for doc_id in sorted(index.documents):
            first, last = index.chunk_ranges[doc_id]
            width = array.nbytes // max(len(array), 1)
            rows = data[first * width : last * width]
            manifest["documents"][doc_id]["rows"][name] = [len(rows), f"{zlib.crc32(rows):08x}"]
    first_piece = 0
    for doc_id in sorted(index.documents):
        record = manifest["documents"][doc_id]
        record["sentences"] = record["chunks"]
        if format_version >= 2:
            record["tokens"] = 3 * record["chunks"]
            record["pieces"] = [segment, first_piece] if record["tokens"] else []
            first_piece += record["tokens"]
        if not per_document_rows:
            del record["rows"]
    if not per_document_rows:
        for name in manifest["files"]:
            manifest["files"][name] = {"size": (folder / name).stat().st_size, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}
    manifest["format_version"] = format_version
    manifest["counts"]["sentences"] = len(index.chunks)
    data = json.dumps(manifest).encode()
    (folder / store.MANIFEST).write_bytes(data)
    (folder / store.MANIFEST_CHECKSUM).write_text(hashlib.sha256(data).hexdigest() + "\n")


OLD_FORMATS = [(2, True), (1, True), (1, False)]  # format, with per-document rows (1.1 on) or not (1.0)


@pytest.mark.parametrize("format_version, per_document_rows", OLD_FORMATS, ids=["format 2", "format 1.1", "format 1.0"])
def test_an_old_format_index_loads_its_chunks_and_vectors(built, format_version, per_document_rows):
    index_dir, folder = built
    fresh = store.load_index(index_dir)
    _as_old_format(index_dir, format_version, per_document_rows)
    assert (folder / "sentence_vectors.npy").is_file() and (format_version < 2 or (folder / "pieces").is_dir())
    old = store.load_index(index_dir)
    assert len(old.chunks) == len(fresh.chunks) == old.vectors.shape[0] == old.dense.ntotal == 3
    assert [(c.id, c.text, c.start, c.end) for c in old.chunks] == [(c.id, c.text, c.start, c.end) for c in fresh.chunks]
    assert np.array_equal(old.vectors, fresh.vectors)
    assert old.documents == fresh.documents and old.chunk_ranges == fresh.chunk_ranges
    assert np.array_equal(old.block("wordnet.txt").vectors, fresh.block("wordnet.txt").vectors)


@pytest.mark.parametrize("name", ["sentences.npy", "sentence_vectors.npy", "sentence_tokens.npy", "pieces/p0123456789ab.npy"])
def test_an_old_format_index_is_checked_in_every_file_it_lists(built, name):
    """Its sentence and piece files are never read, but they are checked as they always were."""
    index_dir, folder = built
    _as_old_format(index_dir, 2)
    data = bytearray((folder / name).read_bytes())
    data[-1] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match=f"{name} does not match .*; rebuild it with `python -m ingest --rebuild`"):
        store.load_index(index_dir)


@pytest.mark.parametrize("format_version, per_document_rows", OLD_FORMATS, ids=["format 2", "format 1.1", "format 1.0"])
def test_the_next_ingest_writes_format_3_without_embedding(built, small_corpus, format_version, per_document_rows, monkeypatch):
    index_dir, _ = built
    before = store.load_index(index_dir)
    _as_old_format(index_dir, format_version, per_document_rows)
    monkeypatch.setattr(sync_module, "load_embedder", lambda *a, **k: pytest.fail("the model was loaded"))
    report = sync([small_corpus], index_dir)  # no embedder, and none is needed: every row is copied
    assert report.embedded_chunks == 0 and len(report.unchanged) == 3 and report.version is not None
    version, manifest = store.read_manifest(index_dir)
    assert manifest["format_version"] == 3 and "sentences" not in manifest["counts"]
    folder = index_dir / version
    assert not list(folder.glob("sentence*")) and not (folder / "pieces").exists()
    assert all(n.split("/")[0] in {"chunks.jsonl", "vectors.npy", "dense.faiss", "bm25"} for n in manifest["files"])
    after = store.load_index(index_dir)
    assert [(c.id, c.text) for c in after.chunks] == [(c.id, c.text) for c in before.chunks]
    assert np.array_equal(after.vectors, before.vectors)
    assert after.documents == before.documents
    assert sync([small_corpus], index_dir).version is None  # once only: now nothing is written


def test_an_old_format_index_with_changes_equals_a_fresh_build(built, small_corpus, tmp_path, fake_embedder):
    index_dir, _ = built
    _as_old_format(index_dir, 2)
    write(small_corpus / "alexnet.md", "# AlexNet\n\nEdited: AlexNet had about 60 million parameters.\n")
    write(small_corpus / "new.md", "# New\n\nA new document about ResNet.\n")
    report = build(small_corpus, index_dir, fake_embedder)
    assert report.embedded_chunks == 2 and report.unchanged == [f"{small_corpus.as_posix()}/history.html", f"{small_corpus.as_posix()}/wordnet.txt"]
    build(small_corpus, tmp_path / "fresh", fake_embedder)
    updated, fresh = store.load_index(index_dir), store.load_index(tmp_path / "fresh")
    assert [(c.id, c.text, c.start, c.end) for c in updated.chunks] == [(c.id, c.text, c.start, c.end) for c in fresh.chunks]
    assert np.allclose(updated.vectors, fresh.vectors)
    assert store.read_manifest(index_dir)[1]["documents"]["wordnet.txt"]["rows"] == store.read_manifest(tmp_path / "fresh")[1]["documents"]["wordnet.txt"]["rows"]
