"""Incremental sync: make the index hold exactly the supported files under the given paths.

New files are added, changed files (by content hash) re-chunked and re-embedded, deleted files
removed; unchanged files keep their chunks and vectors, and a run with no changes loads no model.
Documents stream through the pipeline in id order. A changed file is parsed once to decide, and
kept for embedding while the changed files' text stays under KEEP_PARSED_CHARS; past that it is
parsed again when it is embedded, so memory holds one batch of documents, not the corpus. On a
cluster a changed PDF is not parsed here at all: the workers extract it, and skip it if they must.
A file that cannot be indexed for what it holds is remembered by its hash (SkipMemory) and, while it
and the loaders stay the same, reported again without being parsed or sent anywhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from qa import store
from qa.documents.chunking import Chunker, ChunkSettings
from qa.store.indexing import Progress, embed_stream
from qa.documents import MAX_DOCUMENT_BYTES, kind_of, load_document, loaders_version, sha256
from qa.embedder import BUNDLED, Embedder, ModelSpec, bundled_model_path, load_embedder
from qa.errors import DocumentError, ModelError, QAError
from qa.types import Document

KEEP_PARSED_CHARS = 16_000_000  # text of first-look documents kept for embedding (a PDF is slow to parse)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks: int = 0
    embedded_chunks: int = 0
    seconds: float = 0.0
    version: str | None = None

    def to_json(self) -> dict:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "chunks": self.chunks,
            "embedded_chunks": self.embedded_chunks,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "seconds": round(self.seconds, 3),
            "files": {"added": self.added, "updated": self.updated, "removed": self.removed},
            "version": self.version,
        }

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks} chunks ({self.embedded_chunks} embedded) in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class SourceFile:
    path: Path
    doc_id: str  # relative to its root
    source: str  # as given at ingest time


def sync(
    paths: list[str | Path],
    index_dir: str | Path,
    *,
    model: str | Path | None = None,
    embedder: Embedder | None = None,
    settings: ChunkSettings | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    cluster: str | None = None,
    send_files: bool = False,
) -> SyncReport:
    """Bring `index_dir` in step with the files under `paths`. Holds the writer lock throughout.

    With `cluster` (tcp://HOST:PORT or local:N) the new and changed documents are read, chunked
    and embedded on Dask workers (ingest.cluster); this process still writes the index. With
    `send_files` each file's bytes travel with its task, for workers without shared storage."""
    began = time.perf_counter()
    index_dir = Path(index_dir)
    report = SyncReport()
    files = sorted(scan(paths, report), key=lambda f: f.doc_id)  # the order rows are written in
    with store.writer_lock(index_dir):
        old_manifest = found = None
        if not rebuild:
            found = store.read_manifest(index_dir)
            old_manifest = found[1] if found else None
        old_model = ModelSpec.from_json(old_manifest["model"]) if old_manifest else None
        wanted = _wanted_model(model, embedder, old_model)
        if old_model is not None and wanted is not None and not _same_model(old_model, wanted):
            raise ModelError(
                f"{index_dir}/ was built with model '{old_model.name}'; to switch to '{wanted.name}', "
                f"rebuild it: python -m ingest --rebuild --model {model or wanted.path or wanted.name}"
            )
        if settings is None:
            settings = ChunkSettings(**{k: old_manifest["splitter"][k] for k in ("chunk_size", "chunk_overlap")}) if old_manifest else ChunkSettings()
        # Rows are reused only when chunked the same way.
        same_splitter = bool(old_manifest) and old_manifest["splitter"] == settings.to_json()
        previous = old_manifest["documents"] if old_manifest else {}
        reusable = previous if same_splitter else {}

        fresh: list[SourceFile] = []
        kept: list[str] = []
        sizes: dict[str, int] = {}
        digests: dict[str, str] = {}
        memory = SkipMemory(index_dir, forget=rebuild)
        parsed: dict[str, Document] = {}  # first looks kept for embedding in this process
        held = 0
        for number, file in enumerate(files, 1):
            if progress:
                progress("reading", number, len(files))
            try:
                data = file.path.read_bytes()
            except OSError as exc:
                report.skipped.append((file.source, f"cannot be read ({exc.strerror or exc})"))
                continue
            sizes[file.doc_id] = len(data)
            digests[file.doc_id] = digest = sha256(data)
            old = reusable.get(file.doc_id)
            if old and old["sha256"] == digest and old["source"] == file.source:
                kept.append(file.doc_id)
                report.unchanged.append(file.source)
                continue
            reason = memory.recall(file, digest)
            if reason is not None:
                report.skipped.append((file.source, reason))
                continue
            # A first look, to skip now a file that cannot be indexed; on a cluster a PDF, slow to
            # extract, is left to the workers, which say so if it cannot be.
            if cluster is None or kind_of(file.path) != "pdf":
                try:
                    document = load_document(file.path, file.doc_id, file.source, data)
                except DocumentError as exc:
                    report.skipped.append((file.source, str(exc)))
                    memory.remember(file, digest, str(exc))
                    continue
                if cluster is None and held + len(document.text) <= KEEP_PARSED_CHARS:
                    parsed[file.doc_id] = document
                    held += len(document.text)
            fresh.append(file)
            (report.updated if file.doc_id in previous else report.added).append(file.source)

        memory.save()
        live = set(kept) | {f.doc_id for f in fresh}
        report.removed = sorted(r["source"] for i, r in previous.items() if i not in live)
        current_format = bool(old_manifest) and same_splitter and not store.outdated(old_manifest)
        if current_format and not fresh and not report.removed:
            report.chunks = old_manifest["counts"]["chunks"]
            report.seconds = time.perf_counter() - began
            return report  # nothing changed: no model, no write (an older format is written again, rows copied)

        current = store.PreviousVersion(index_dir, found) if kept else None
        with contextlib.ExitStack() as stack:
            total_bytes = sum(sizes[f.doc_id] for f in fresh)
            if cluster is not None and fresh:
                from ingest.cluster import Cluster, make_job

                remote = stack.enter_context(Cluster.open(cluster))
                job = make_job(wanted if wanted is not None else old_model, settings, embedder)
                spec = remote.check(job, None if send_files else fresh[0].path.resolve())
                by_id = {f.doc_id: f for f in fresh}

                def skip(doc_id: str, answer) -> None:
                    _skip(by_id[doc_id], answer.reason, previous, report)
                    if answer.lasting:
                        memory.remember(by_id[doc_id], digests[doc_id], answer.reason)

                blocks = remote.embed(job, _items(fresh, send_files), sizes, progress, total_bytes, skip)
            else:
                if embedder is None and (fresh or old_model is None):
                    embedder = load_embedder(wanted if wanted is not None else old_model)
                spec = embedder.spec if embedder is not None else old_model
                blocks = embed_stream(_reload(fresh, parsed, sizes, previous, report, memory), embedder, Chunker(settings), sizes, progress, total_bytes)
            _write(index_dir, spec, settings, blocks, kept, current, old_manifest, progress, report, current_format)
        memory.save()
        report.seconds = time.perf_counter() - began
        return report


def _write(index_dir, spec, settings, blocks, kept, current, old_manifest, progress, report: SyncReport, current_format: bool) -> None:
    """The new version: embedded blocks merged in id order with the unchanged documents' rows;
    none when every new or changed file was skipped after all and the live version is current."""
    writer = store.IndexWriter(index_dir, model=spec, settings=settings)
    try:
        waiting = iter(kept)  # unchanged documents, merged in id order with the embedded ones
        next_kept = next(waiting, None)
        for block in blocks:
            while next_kept is not None and next_kept < block.record.id:
                writer.keep(current, next_kept)
                report.chunks += current.records[next_kept].chunks
                next_kept = next(waiting, None)
            writer.add(block)
            report.chunks += len(block.chunks)
            report.embedded_chunks += len(block.chunks)
        while next_kept is not None:
            writer.keep(current, next_kept)
            report.chunks += current.records[next_kept].chunks
            next_kept = next(waiting, None)
        if current_format and not (report.added or report.updated or report.removed):
            writer.discard()  # the same documents as the live version: nothing to write
            return
        if progress:
            progress("writing", 0, 1)
        report.version = writer.publish(created_at=old_manifest["created_at"] if old_manifest else None)
    finally:
        writer.close()


def _reload(files: list[SourceFile], parsed: dict[str, Document], sizes: dict[str, int], previous: dict, report: SyncReport, memory: "SkipMemory") -> Iterator[Document]:
    """Each new or changed file as it is embedded: its first look when it was kept, else loaded
    again. One that became unreadable since the first look is skipped (and leaves the index, if
    it was in it)."""
    for file in files:
        if file.doc_id in parsed:
            yield parsed.pop(file.doc_id)
            continue
        try:
            data = file.path.read_bytes()
        except OSError as exc:
            _skip(file, f"cannot be read ({exc.strerror or exc})", previous, report)
            continue
        sizes[file.doc_id] = len(data)
        try:
            yield load_document(file.path, file.doc_id, file.source, data)
        except DocumentError as exc:
            _skip(file, str(exc), previous, report)
            memory.remember(file, sha256(data), str(exc))


def _skip(file: SourceFile, reason: str, previous: dict, report: SyncReport) -> None:
    """A new or changed file that could not be indexed after all: skipped, and out of the index."""
    report.skipped.append((file.source, reason))
    if file.doc_id in previous:
        report.updated.remove(file.source)
        report.removed.append(file.source)
    else:
        report.added.remove(file.source)


class SkipMemory:
    """Files skipped for what they hold (empty, damaged, no text), by content hash, kept beside the
    index (store.SKIPPED): while such a file and the loaders stay the same it is skipped again,
    with its reason, without being parsed or sent to a cluster. A file that could not be read is
    tried again, so is each one after an upgrade of the loaders, and --rebuild forgets them all."""

    def __init__(self, index_dir: Path, forget: bool) -> None:
        self.index_dir = index_dir
        self.loaders = loaders_version()
        self.saved = store.read_skipped(index_dir)  # as the last run left it
        self.known = {} if forget else self.saved
        self.now: dict[str, dict] = {}  # this run's, so a file gone or changed is forgotten

    def recall(self, file: SourceFile, digest: str) -> str | None:
        entry = self.known.get(file.doc_id)
        if entry is None or (entry["sha256"], entry["source"], entry.get("loaders")) != (digest, file.source, self.loaders):
            return None
        self.now[file.doc_id] = entry
        return entry["reason"]

    def remember(self, file: SourceFile, digest: str, reason: str) -> None:
        self.now[file.doc_id] = {"sha256": digest, "source": file.source, "reason": reason, "loaders": self.loaders}

    def save(self) -> None:
        if self.now != self.saved:
            store.write_skipped(self.index_dir, self.now)
            self.saved = dict(self.now)


def _items(files: list[SourceFile], send_files: bool):
    """What the cluster's tasks get: absolute paths, and with `send_files` the bytes, read as
    each task is sent."""
    from ingest.cluster import Item

    for file in files:
        path = file.path.resolve()
        try:
            data = path.read_bytes() if send_files else None
        except OSError as exc:
            yield Item(file.doc_id, file.source, str(path), error=f"cannot be read ({exc.strerror or exc})")
            continue
        yield Item(file.doc_id, file.source, str(path), data)


def scan(paths: list[str | Path], report: SyncReport) -> list[SourceFile]:
    """Supported files under `paths`, in a stable order. Unsupported or unsafe ones go to
    `report.skipped`; a path that does not exist stops the run (it would empty the index)."""
    files: dict[str, SourceFile] = {}
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise QAError(f"{given} does not exist; name a documents folder or file (the default is corpus/).")
        if given.is_file():
            candidates = [(given, given.name)]
            root = given.parent.resolve()
        else:
            root = given.resolve()
            candidates = []
            for folder, dirs, names in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith("."):
                        path = Path(folder) / name
                        candidates.append((path, path.relative_to(given).as_posix()))
        for path, doc_id in candidates:
            source = path.as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                report.skipped.append((source, "a symbolic link to a file outside the documents folder"))
            elif not path.is_file():
                report.skipped.append((source, "not a regular file"))
            elif kind_of(path) is None:
                report.skipped.append((source, f"unsupported file type '{path.suffix or path.name}' (use .txt, .md, .html or .pdf)"))
            elif path.stat().st_size > MAX_DOCUMENT_BYTES:
                report.skipped.append((source, f"larger than {MAX_DOCUMENT_BYTES // 2**20} MB"))
            elif doc_id in files:
                report.skipped.append((source, f"same relative path as {files[doc_id].source}"))
            else:
                files[doc_id] = SourceFile(path, doc_id, source)
    return list(files.values())


def _wanted_model(model: str | Path | None, embedder: Embedder | None, old: ModelSpec | None) -> ModelSpec | None:
    """The model this run asks for, without loading it (dimension 0 = not known yet)."""
    if embedder is not None:
        return embedder.spec
    if model is None:
        return old or ModelSpec(BUNDLED, 0)
    path = Path(model).expanduser().resolve()
    if path == bundled_model_path().resolve():
        return ModelSpec(BUNDLED, 0)
    return ModelSpec(path.name, 0, str(path))


def _same_model(a: ModelSpec, b: ModelSpec) -> bool:
    return a.name == b.name and a.path == b.path and (not a.dimension or not b.dimension or a.dimension == b.dimension)
