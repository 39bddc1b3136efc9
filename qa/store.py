"""The on-disk index format. This module alone reads and writes it.

    index/
      CURRENT              name of the live version folder, then of the one before it (replaced atomically)
      .lock                held by the one writer
      v000007-3fa9c1/      a complete version, never modified after it is published
        manifest.json      format version, model, splitter settings, documents, counts, file sizes and hashes
        chunks.jsonl       one chunk record per line, in vector row order
        vectors.npy        float32 [chunks, dimension], L2-normalized (kept so a changed document
                           can be replaced without re-embedding the others)
        dense.faiss        inner-product FAISS index over the same rows
        bm25/              bm25s index over the chunk texts (numpy arrays and JSON, no pickle)
        sentences.npy      int64 [sentences, 2]: start and end of each sentence in its document's
                           text, grouped by document in the same order as the chunks
        sentence_vectors.npy  float32 [sentences, dimension], so a question costs one embedding

A writer builds a new version in a hidden staging folder, publishes it by renaming, then swaps
CURRENT. A crash at any point leaves the previous version live; the next writer removes leftovers.
Nothing is stored in a format that can run code on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from qa.chunking import ChunkSettings
from qa.embedder import ModelSpec
from qa.errors import IndexBusy, IndexInvalid, IndexNotFound
from qa.types import Chunk

FORMAT_VERSION = 1
_VERSION = re.compile(r"v\d{6}-[0-9a-f]{6}")
CURRENT = "CURRENT"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
REBUILD = "python -m ingest --rebuild"


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    source: str
    title: str
    kind: str
    sha256: str
    size: int
    chunks: int
    sentences: int
    indexed_at: float


@dataclass
class DocumentBlock:
    """One document's rows: its chunks and vectors, its sentences and their vectors."""

    record: DocumentRecord
    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_spans: np.ndarray
    sentence_vectors: np.ndarray


@dataclass
class IndexData:
    """A loaded, validated index version. Treated as read-only once loaded."""

    directory: Path
    version: str
    model: ModelSpec
    settings: ChunkSettings
    documents: dict[str, DocumentRecord]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: object  # faiss.Index
    lexical: object  # qa.lexical.LexicalIndex
    sentence_spans: np.ndarray
    sentence_vectors: np.ndarray
    created_at: float
    chunk_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # doc id -> chunk rows
    sentence_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # doc id -> sentence rows

    def __post_init__(self) -> None:
        chunk_row = sentence_row = 0
        for doc_id in sorted(self.documents):
            record = self.documents[doc_id]
            self.chunk_ranges[doc_id] = (chunk_row, chunk_row + record.chunks)
            self.sentence_ranges[doc_id] = (sentence_row, sentence_row + record.sentences)
            chunk_row += record.chunks
            sentence_row += record.sentences

    def block(self, doc_id: str) -> DocumentBlock:
        first, last = self.chunk_ranges[doc_id]
        s_first, s_last = self.sentence_ranges[doc_id]
        return DocumentBlock(
            record=self.documents[doc_id],
            chunks=self.chunks[first:last],
            vectors=np.asarray(self.vectors[first:last]),
            sentence_spans=np.asarray(self.sentence_spans[s_first:s_last]),
            sentence_vectors=np.asarray(self.sentence_vectors[s_first:s_last]),
        )


# --- reading ----------------------------------------------------------------------------------


def current_version(index_dir: Path) -> str | None:
    return _pointer(index_dir)[0]


def _pointer(index_dir: Path) -> tuple[str | None, str | None]:
    """(live version, previous version) named by CURRENT."""
    try:
        lines = (index_dir / CURRENT).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError):
        raise IndexInvalid(f"{index_dir}/{CURRENT} cannot be read; rebuild the index with `{REBUILD}`.") from None
    name = lines[0].strip() if lines else ""
    if not _VERSION.fullmatch(name) or not (index_dir / name).is_dir():
        raise IndexInvalid(f"{index_dir}/{CURRENT} points to a missing version ({name!r}); rebuild the index with `{REBUILD}`.")
    previous = lines[1].strip() if len(lines) > 1 else ""
    return name, previous if _VERSION.fullmatch(previous) else None


def read_manifest(index_dir: Path) -> tuple[str, dict] | None:
    """The live version's name and manifest, or None when there is no index yet. Cheap: no arrays."""
    version = current_version(index_dir)
    if version is None:
        return None
    path = index_dir / version / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise IndexInvalid(f"{path} is missing or not valid JSON; rebuild the index with `{REBUILD}`.") from None
    _check_manifest(manifest, path)
    return version, manifest


def _check_manifest(manifest: object, path: Path) -> None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format_version"), int):
        raise IndexInvalid(f"{path} is not an index manifest; rebuild the index with `{REBUILD}`.")
    if manifest["format_version"] > FORMAT_VERSION:
        raise IndexInvalid(
            f"{path.parent.parent} was written by a newer version of this program (format {manifest['format_version']}, "
            f"this one reads {FORMAT_VERSION}); upgrade, or rebuild the index with `{REBUILD}`."
        )
    if manifest["format_version"] < FORMAT_VERSION:
        raise IndexInvalid(f"{path.parent.parent} uses an old index format; rebuild it with `{REBUILD}`.")
    required = {"model": dict, "splitter": dict, "documents": dict, "counts": dict, "files": dict, "created_at": (int, float)}
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise IndexInvalid(f"{path} lacks a valid '{key}' entry; rebuild the index with `{REBUILD}`.")


def load_index(index_dir: str | Path) -> IndexData:
    """Load and validate the live version. Raises IndexNotFound or IndexInvalid with the fix."""
    import faiss

    from qa.lexical import LexicalIndex

    index_dir = Path(index_dir)
    found = read_manifest(index_dir)
    if found is None:
        raise IndexNotFound(f"There is no index in {index_dir}/ yet: build one with `python -m ingest`.")
    version, manifest = found
    folder = index_dir / version

    def broken(why: str) -> IndexInvalid:
        return IndexInvalid(f"The index in {index_dir}/ is damaged ({why}); rebuild it with `{REBUILD}`.")

    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise broken(f"{name} is missing")
        if path.stat().st_size != expected["size"] or _file_sha256(path) != expected["sha256"]:
            raise broken(f"{name} does not match its recorded size and checksum")
    try:
        model = ModelSpec.from_json(manifest["model"])
        settings = ChunkSettings(manifest["splitter"]["chunk_size"], manifest["splitter"]["chunk_overlap"])
        documents = {d["id"]: DocumentRecord(**d) for d in manifest["documents"].values()}
        chunks = [_chunk_from_json(json.loads(line)) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    except (KeyError, TypeError, ValueError) as exc:
        raise broken(f"unreadable records: {exc}") from None
    try:
        vectors = np.load(folder / "vectors.npy", allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise broken(f"vectors.npy: {exc}") from None
    if vectors.dtype != np.float32 or vectors.ndim != 2:
        raise broken(f"vectors.npy holds {vectors.dtype} of shape {vectors.shape}, not float32 rows")
    if len(chunks) != vectors.shape[0] or len(chunks) != manifest["counts"].get("chunks"):
        raise broken(f"{len(chunks)} chunk records but {vectors.shape[0]} vectors")
    if vectors.shape[1] != model.dimension:
        raise broken(f"vectors have {vectors.shape[1]} dimensions, the model {model.dimension}")
    expected_ids = [doc_id for doc_id in sorted(documents) for _ in range(documents[doc_id].chunks)]
    if [c.doc_id for c in chunks] != expected_ids:
        raise broken("chunk records do not match the documents in the manifest")
    try:
        sentence_spans = np.load(folder / "sentences.npy", allow_pickle=False)
        sentence_vectors = np.load(folder / "sentence_vectors.npy", allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise broken(f"sentences: {exc}") from None
    sentences = sum(d.sentences for d in documents.values())
    if sentence_spans.shape != (sentences, 2) or sentence_vectors.shape != (sentences, model.dimension):
        raise broken(f"{sentences} sentences in the manifest but arrays of {sentence_spans.shape} and {sentence_vectors.shape}")
    try:
        dense = faiss.read_index(str(folder / "dense.faiss"))
    except RuntimeError:
        raise broken("dense.faiss cannot be read") from None
    if dense.ntotal != len(chunks) or dense.d != model.dimension:
        raise broken(f"dense.faiss holds {dense.ntotal} vectors of {dense.d} dimensions")
    try:
        lexical = LexicalIndex.load(folder / "bm25", len(chunks))
    except (OSError, ValueError, KeyError) as exc:
        raise broken(f"bm25: {exc}") from None
    return IndexData(
        directory=index_dir,
        version=version,
        model=model,
        settings=settings,
        documents=documents,
        chunks=chunks,
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        sentence_spans=sentence_spans,
        sentence_vectors=sentence_vectors,
        created_at=float(manifest["created_at"]),
    )


def _chunk_from_json(data: dict) -> Chunk:
    chunk = Chunk(
        id=str(data["id"]),
        doc_id=str(data["doc_id"]),
        start=int(data["start"]),
        end=int(data["end"]),
        text=str(data["text"]),
        page=None if data.get("page") is None else int(data["page"]),
        section=None if data.get("section") is None else str(data["section"]),
    )
    if chunk.end - chunk.start != len(chunk.text) or chunk.start < 0:
        raise ValueError(f"chunk {chunk.id} has offsets that do not fit its text")
    return chunk


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- writing ----------------------------------------------------------------------------------


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time. The OS drops the lock if the writer dies, even by SIGKILL."""
    from filelock import FileLock, Timeout

    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(index_dir / LOCK), timeout=0)
        lock.acquire()
    except Timeout:
        raise IndexBusy(
            f"Another ingest is already updating {index_dir}/; wait for it to finish, then run this again."
        ) from None
    except OSError as exc:
        raise IndexBusy(f"Cannot write to {index_dir}/ ({exc.strerror}); choose a writable folder with --index DIR.") from None
    try:
        yield
    finally:
        lock.release()


def write_index(
    index_dir: Path,
    *,
    model: ModelSpec,
    settings: ChunkSettings,
    blocks: list[DocumentBlock],
    created_at: float | None = None,
) -> str:
    """Write a complete new version and make it live atomically; returns its name.

    The caller holds `writer_lock`. Rows are laid out by document id.
    """
    import faiss

    from qa.lexical import LexicalIndex

    blocks = sorted(blocks, key=lambda b: b.record.id)
    chunks = [c for b in blocks for c in b.chunks]
    vectors = _stack([b.vectors for b in blocks], (0, model.dimension), np.float32)
    sentence_spans = _stack([b.sentence_spans for b in blocks], (0, 2), np.int64)
    sentence_vectors = _stack([b.sentence_vectors for b in blocks], (0, model.dimension), np.float32)
    for b in blocks:
        if len(b.chunks) != b.record.chunks or len(b.vectors) != len(b.chunks) or len(b.sentence_spans) != b.record.sentences:
            raise ValueError(f"rows of {b.record.id} do not match its record")
    if vectors.shape != (len(chunks), model.dimension) or len(sentence_vectors) != len(sentence_spans):
        raise ValueError(f"vectors of shape {vectors.shape} for {len(chunks)} chunks of dimension {model.dimension}")
    index_dir.mkdir(parents=True, exist_ok=True)
    clean_leftovers(index_dir)
    staging = index_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()

    with (staging / "chunks.jsonl").open("w", encoding="utf-8") as out:
        for chunk in chunks:
            out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    np.save(staging / "vectors.npy", vectors, allow_pickle=False)
    np.save(staging / "sentences.npy", sentence_spans, allow_pickle=False)
    np.save(staging / "sentence_vectors.npy", sentence_vectors, allow_pickle=False)
    dense = faiss.IndexFlatIP(model.dimension)
    if len(vectors):
        dense.add(vectors)
    faiss.write_index(dense, str(staging / "dense.faiss"))
    LexicalIndex.build([c.text for c in chunks]).save(staging / "bm25")

    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        _fsync(path)
        files[path.relative_to(staging).as_posix()] = {"size": path.stat().st_size, "sha256": _file_sha256(path)}
    now = time.time()
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model.to_json(),
        "splitter": settings.to_json(),
        "documents": {b.record.id: asdict(b.record) for b in blocks},
        "counts": {"documents": len(blocks), "chunks": len(chunks), "sentences": len(sentence_spans)},
        "files": files,
        "created_at": created_at if created_at is not None else now,
        "updated_at": now,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    _fsync(staging / "manifest.json")
    for folder in {p.parent for p in staging.rglob("*")} | {staging}:
        _fsync(folder)

    try:
        previous = current_version(index_dir)
    except IndexInvalid:  # a rebuild over a damaged index
        previous = None
    version = f"v{_next_number(index_dir):06d}-{uuid.uuid4().hex[:6]}"
    os.rename(staging, index_dir / version)
    _fsync(index_dir)
    pointer = index_dir / f"{CURRENT}.tmp"
    pointer.write_text(f"{version}\n{previous or ''}\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync(index_dir)
    clean_leftovers(index_dir)
    return version


def _stack(parts: list[np.ndarray], empty: tuple[int, int], dtype) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype) if parts else np.zeros(empty, dtype)


def clean_leftovers(index_dir: Path) -> None:
    """Remove what interrupted writers left (staging folders, versions never made live) and
    versions older than the one before the live one, which is kept for readers still loading it."""
    try:
        keep = set(_pointer(index_dir))
    except IndexInvalid:
        return  # leave a damaged index as it is for the user to inspect; --rebuild replaces it
    for path in index_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    (index_dir / f"{CURRENT}.tmp").unlink(missing_ok=True)
    for path in index_dir.glob("v[0-9]*"):
        if path.is_dir() and _VERSION.fullmatch(path.name) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _next_number(index_dir: Path) -> int:
    numbers = [int(p.name[1:7]) for p in index_dir.glob("v[0-9]*") if p.name[1:7].isdigit()]
    return max(numbers, default=0) + 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
