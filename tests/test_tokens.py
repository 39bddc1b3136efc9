"""Token-level alignment (qa.tokens): how word pieces are scored, stored and read back."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.sync import sync
from qa import store, tokens
from qa.engine import _score_sentences
from qa.text import words
from tests.conftest import PieceEmbedder, write


def _codes(*rows: list[float]) -> np.ndarray:
    out = np.zeros((len(rows), tokens.DIMENSION), np.int8)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def test_alignment_is_the_mean_over_question_pieces_of_their_best_match():
    question = tokens.unit(_codes([100, 0], [0, 100]))
    says_one = _codes([100, 0], [50, 50])  # meets the first piece fully, the second at cosine 0.71
    says_both = _codes([0, 100], [100, 0], [1, 1])
    first, second = tokens.alignments(question, [says_one, says_both])
    assert first == pytest.approx((1 + 2**-0.5) / 2, abs=1e-6)
    assert second == pytest.approx(1.0, abs=1e-6)


def test_projection_keeps_directions_of_the_bundled_model_states():
    from qa.embedder import bundled_model_path

    basis = tokens.basis(bundled_model_path())
    assert basis.shape == (1 + tokens.DIMENSION, 384)
    axes = basis[1:]
    assert np.allclose(axes @ axes.T, np.eye(tokens.DIMENSION), atol=1e-4)  # orthonormal, so a projection
    assert np.array_equal(basis, tokens.basis.__wrapped__(bundled_model_path()))  # computed again: the same, for every index
    codes = tokens.project(np.random.default_rng(0).standard_normal((5, 384)).astype(np.float32), basis)
    assert codes.dtype == np.int8 and np.abs(codes).max(axis=1).tolist() == [127] * 5


def test_every_sentence_keeps_its_own_word_pieces_once(tmp_path):
    """Chunks overlap, so a sentence in two chunks is seen twice; its pieces are stored once."""
    docs = tmp_path / "docs"
    text = " ".join(f"Sentence number {i} talks about topic{i} and nothing else." for i in range(60))
    write(docs / "long.txt", text)
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    index = store.load_index(tmp_path / "index")
    assert len(index.chunks) > 2  # several overlapping chunks
    first, last = index.sentence_ranges["long.txt"]
    for row in range(first, last):
        start, end = index.sentence_spans[row]
        assert len(index.sentence_pieces(row)) == len(words(text[start:end]))


def test_word_pieces_survive_an_update_of_another_document(tmp_path):
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    write(docs / "b.txt", "Zeta eta theta.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    before = store.load_index(tmp_path / "index").block("a.txt")
    write(docs / "b.txt", "Zeta eta theta iota.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    after = store.load_index(tmp_path / "index")
    kept = after.block("a.txt")
    assert kept.sentence_tokens.tolist() == before.sentence_tokens.tolist() == [3, 2]
    assert np.array_equal(kept.token_vectors, before.token_vectors)
    changed = after.block("b.txt")
    assert changed.sentence_tokens.tolist() == [4]


def test_a_damaged_word_piece_is_found(tmp_path):
    from qa.errors import IndexInvalid

    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    version = store.read_manifest(tmp_path / "index")[0]
    (path,) = (tmp_path / "index" / version / "pieces").iterdir()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match=f"pieces/{path.name} does not match"):
        store.load_index(tmp_path / "index")


def test_alignment_is_left_out_when_a_sentence_has_no_word_pieces(tmp_path):
    """An index updated from a version that kept no pieces mixes sentences with and without them:
    then no sentence is scored on alignment, rather than those without losing."""
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    index = store.load_index(tmp_path / "index")
    embedder = PieceEmbedder()
    vector, pieces = embedder.encode_query_tokens("alpha delta")
    from qa.engine import Passage

    chunk = index.chunks[0]
    passage = Passage(chunk.doc_id, chunk.start, chunk.end, chunk.text, 1.0, [0])
    scored = _score_sentences(index, "alpha delta", vector, [passage], pieces)
    assert all(0.5 <= s.alignment < 1 for s in scored)  # each sentence says one of the two words
    index.piece_rows[0, 2] = 0  # the first sentence loses its pieces
    scored = _score_sentences(index, "alpha delta", vector, [passage], pieces)
    assert [s.alignment for s in scored] == [0.0, 0.0]


def test_an_index_written_before_word_pieces_loads_and_is_embedded_again_once(tmp_path):
    import hashlib
    import json

    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    write(docs / "b.txt", "Zeta eta theta.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    version = store.read_manifest(index_dir)[0]
    folder = index_dir / version
    manifest = json.loads((folder / store.MANIFEST).read_text())
    import shutil

    shutil.rmtree(folder / "pieces")  # as format 1 wrote it
    (folder / store.PIECE_COUNTS).unlink()
    manifest["format_version"] = 1
    manifest["files"] = {name: entry for name, entry in manifest["files"].items() if name != store.PIECE_COUNTS and not name.startswith("pieces/")}
    for record in manifest["documents"].values():
        del record["rows"][store.PIECE_COUNTS], record["tokens"], record["pieces"]
    data = json.dumps(manifest).encode()
    (folder / store.MANIFEST).write_bytes(data)
    (folder / store.MANIFEST_CHECKSUM).write_text(hashlib.sha256(data).hexdigest() + "\n")

    old = store.load_index(index_dir)
    assert not old.pieces_kept and len(old.chunks) == 2
    report = sync([docs], index_dir, embedder=PieceEmbedder())
    assert report.embedded_chunks == report.chunks == 2
    assert store.load_index(index_dir).block("a.txt").sentence_tokens.tolist() == [3, 2]
    assert sync([docs], index_dir, embedder=PieceEmbedder()).embedded_chunks == 0  # once only


def _segments(index_dir) -> list:
    version = store.read_manifest(index_dir)[0]
    return sorted((index_dir / version / "pieces").iterdir())


def _assert_pieces_as_fresh_build(index_dir, docs, scratch) -> None:
    """Every document reads back the word pieces a fresh build of the same files gives it."""
    sync([docs], scratch, embedder=PieceEmbedder(), rebuild=True)
    updated, fresh = store.load_index(index_dir), store.load_index(scratch)
    assert sorted(updated.documents) == sorted(fresh.documents)
    for doc_id in fresh.documents:
        ours, theirs = updated.block(doc_id), fresh.block(doc_id)
        assert ours.sentence_tokens.tolist() == theirs.sentence_tokens.tolist()
        assert np.array_equal(ours.token_vectors, theirs.token_vectors), doc_id


def test_an_update_writes_only_the_changed_documents_word_pieces(tmp_path):
    """Word pieces are most of an index's bytes: the unchanged documents' segment is linked into
    the new version, not copied, so adding to a large index stays quick."""
    import os

    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    for i in range(6):
        write(docs / f"d{i}.txt", f"Document {i} names alpha{i} and beta{i}. It also says gamma{i}.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    (built,) = _segments(index_dir)
    write(docs / "d3.txt", "Document three was changed entirely.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    segments = _segments(index_dir)
    assert len(segments) == 2
    (linked,) = [p for p in segments if p.name == built.name]
    assert os.stat(linked).st_ino == os.stat(built).st_ino  # one file in both versions
    (written,) = [p for p in segments if p.name != built.name]
    assert np.load(written).shape == (5, tokens.DIMENSION)  # the five words of the changed document
    _assert_pieces_as_fresh_build(index_dir, docs, tmp_path / "fresh")


def test_dead_word_pieces_are_dropped_once_they_are_most_of_a_segment(tmp_path):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    for i in range(6):
        write(docs / f"d{i}.txt", f"Document {i} names alpha{i} and beta{i}.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    (built,) = _segments(index_dir)
    for i in range(4):
        (docs / f"d{i}.txt").unlink()
    sync([docs], index_dir, embedder=PieceEmbedder())
    (segment,) = _segments(index_dir)
    assert segment.name != built.name and np.load(segment).shape[0] == 2 * 6  # only the two live documents
    _assert_pieces_as_fresh_build(index_dir, docs, tmp_path / "fresh")


def test_many_small_updates_do_not_pile_up_segments(tmp_path):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    for i in range(30):
        write(docs / f"d{i:02d}.txt", f"Document {i} names alpha{i} and beta{i}. " * 20)
    sync([docs], index_dir, embedder=PieceEmbedder())
    for i in range(25):
        write(docs / f"new{i:02d}.txt", f"New document {i} adds delta{i}.")
        if i % 3 == 0:
            write(docs / f"d{i:02d}.txt", f"Document {i} was rewritten with epsilon{i}.")
        sync([docs], index_dir, embedder=PieceEmbedder())
        assert len(_segments(index_dir)) <= store.MAX_SEGMENTS
    _assert_pieces_as_fresh_build(index_dir, docs, tmp_path / "fresh")


def test_word_pieces_named_outside_their_index_are_refused_unopened(tmp_path):
    """A manifest edited (its checksum too) to point a document's pieces at another file: loading
    and updating both refuse it in one sentence, and the file is never opened."""
    import hashlib
    import json

    from qa.errors import IndexInvalid
    from tests.test_hostile import outside, touched

    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    write(docs / "b.txt", "Zeta eta theta.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    np.save(tmp_path / "secret.npy", np.zeros((9, tokens.DIMENSION), np.int8))
    folder = index_dir / store.read_manifest(index_dir)[0]
    manifest = json.loads((folder / store.MANIFEST).read_text())
    manifest["documents"]["a.txt"]["pieces"] = ["../../secret.npy", 0]
    manifest["files"]["../../secret.npy"] = {"size": (tmp_path / "secret.npy").stat().st_size}
    data = json.dumps(manifest).encode()
    (folder / store.MANIFEST).write_bytes(data)
    (folder / store.MANIFEST_CHECKSUM).write_text(hashlib.sha256(data).hexdigest() + "\n")
    write(docs / "b.txt", "Zeta eta theta iota.")  # so the update keeps a.txt's rows
    with touched() as events:
        with pytest.raises(IndexInvalid, match=r"\(the word pieces of a\.txt are in no listed segment\); rebuild it with"):
            sync([docs], index_dir, embedder=PieceEmbedder())
        with pytest.raises(IndexInvalid, match="is missing|no listed segment"):
            store.load_index(index_dir)
    assert outside(events, tmp_path, index_dir, docs) == []
