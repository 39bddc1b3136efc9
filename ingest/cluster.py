"""Embedding on a Dask cluster: `python -m ingest DOCS --cluster tcp://HOST:PORT` (or `local:N`).

This process decides what needs embedding exactly as a single-process run does, and stays the
only index writer. Workers read, chunk and embed groups of consecutive documents, each loading
the model once; the groups come back in document order through a window of a few tasks per
worker, so memory here holds a few groups, never the corpus. A worker that dies has its tasks
run again elsewhere by Dask. Only this module imports Dask, and only when `--cluster` is given.

Before anything is written the cluster is checked: a scheduler answers, it has workers, every
worker runs the same project code as this process (SHA-256 of qa/ and ingest/ and the versions of
the libraries that read and split documents), holds the same model files (SHA-256 of the folder)
and can read the documents at the same path (unless `send_files`, which sends each file's bytes
with its task).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from qa import store
from qa.documents.chunking import Chunker, ChunkSettings
from qa.documents import code_version, load_document, sha256
from qa.embedder import Embedder, ModelSpec, backend_from_env, bundled_model_path, load_embedder
from qa.errors import DocumentError, QAError
from qa.store.indexing import Meter, Progress, embed_stream

CONNECT_SECONDS = 10.0  # for the scheduler to answer
WORKERS_SECONDS = 10.0  # for a first worker to join, and how long a run waits with none left
GROUP_BYTES = 256 * 1024  # a task: consecutive documents up to about this many bytes (~6 s of embedding here)
MIN_GROUP_BYTES = 16 * 1024  # ... or fewer, so that a small run still gives every worker several tasks
GROUP_FILES = 64
TASKS_PER_WORKER = 2  # in flight: one embedding, one waiting, so no worker idles between tasks


class ClusterError(QAError):
    pass


# What a vanished scheduler looks like from here: closed connections (OSError), time-outs, cancelled futures.
_LOST = (OSError, TimeoutError, concurrent.futures.CancelledError, asyncio.CancelledError)


@dataclass(frozen=True)
class Job:
    """What every task carries: how to get the embedder, and how to chunk."""

    model: ModelSpec
    backend: str
    fingerprint: str  # SHA-256 of the model folder, as this process sees it
    code: str  # code_fingerprint() of this process
    settings: ChunkSettings
    embedder: Embedder | None = None  # an in-memory embedder (tests' fakes) travels with the task instead


@dataclass(frozen=True)
class Item:
    doc_id: str
    source: str
    path: str  # absolute, as the workers must see it
    data: bytes | None = None  # the file itself, with send_files
    error: str | None = None  # why this process could not read it to send it


@dataclass(frozen=True)
class Skipped:
    """A task's answer for a document it could not index."""

    reason: str
    lasting: bool  # what the file holds is the cause: it is skipped again until it changes


class Cluster:
    """A connected, checked cluster. `open` refuses a bad one before anything is written."""

    def __init__(self, address: str, client, local=None) -> None:
        self.address, self.client, self.local = address, client, local

    @classmethod
    def open(cls, address: str) -> "Cluster":
        quiet_logs()
        from distributed import Client

        local = None
        if address.startswith("local:"):
            count = address.removeprefix("local:")
            if not count.isdigit() or int(count) < 1:
                raise ClusterError(f"--cluster local:N needs a number of workers of at least 1 (got {address!r}).")
            try:
                local = start_local(int(count))
            except Exception as exc:
                raise ClusterError(f"Could not start {count} local Dask workers ({type(exc).__name__}: {exc}); try fewer, or leave out --cluster.") from None
            target = local.scheduler_address
        elif address.startswith("tcp://") and ":" in address.removeprefix("tcp://"):
            target = address
        else:
            raise ClusterError(f"--cluster takes tcp://HOST:PORT (a Dask scheduler) or local:N (got {address!r}).")
        try:
            client = Client(target, timeout=CONNECT_SECONDS, set_as_default=False)
        except Exception as exc:  # refused, timed out, or something that speaks another protocol
            if local is not None:
                local.close()
            raise ClusterError(
                f"No Dask scheduler answered at {address} ({type(exc).__name__}); start one with "
                "`make scheduler` and check the address, or use --cluster local:N."
            ) from None
        cluster = cls(address, client, local)
        try:
            client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except Exception:
            cluster.close()
            raise ClusterError(
                f"The Dask scheduler at {address} has no workers; start some with `make worker SCHEDULER={address}` "
                "on each machine (see the README), then run ingest again."
            ) from None
        return cluster

    def check(self, job: Job, probe: Path | None) -> ModelSpec:
        """Refuse workers that hold another model or cannot read the documents; warm each one
        up (it loads the model once) and return the model's spec for the index."""
        from distributed.scheduler import KilledWorker

        try:
            probe_sha = sha256(probe.read_bytes()) if probe is not None else None
        except OSError:  # gone since the scan: its task will report it; nothing to compare with
            probe = probe_sha = None
        answers = self._guarded(lambda: self.client.run(_inspect_worker, job.model, str(probe) if probe else None))
        for worker, (code, fingerprint, seen) in sorted(answers.items()):
            if code != job.code:
                raise ClusterError(
                    f"Worker {worker} runs other project code than this checkout ({_short(code)}, here {_short(job.code)}); "
                    "check out the same commit and install the same requirements on every machine, then run ingest again."
                )
            if fingerprint != job.fingerprint:
                raise ClusterError(
                    f"Worker {worker} holds a different {job.model.name} model ({_short(fingerprint)}, here {_short(job.fingerprint)}); "
                    "install the same requirements (and --model folder) on every machine, then run ingest again."
                )
            if probe is not None and seen != probe_sha:
                why = seen if seen and len(seen) != 64 else "it sees a different file there"
                raise ClusterError(
                    f"Worker {worker} cannot read the documents at {probe.parent} ({why}); put the folder at the same path "
                    "on every machine (shared storage), or pass --send-files to send each file with its task."
                )
        workers = list(answers)
        warm = [self.client.submit(_warm_up, job, workers=[w], allow_other_workers=True, pure=False) for w in workers]
        try:
            specs = set(self._guarded(lambda: self.client.gather(warm)))
        except KilledWorker:
            raise ClusterError(f"Workers died loading the {job.model.name} model (out of memory?); give them more memory, then run ingest again.") from None
        if len(specs) != 1:
            raise ClusterError(f"The workers load {job.model.name} differently ({', '.join(sorted(map(str, specs)))}); install the same requirements everywhere.")
        return specs.pop()

    def embed(
        self,
        job: Job,
        items: Iterable[Item],
        sizes: dict[str, int],
        progress: Progress | None,
        total_bytes: int,
        skip: Callable[[str, Skipped], None],
    ) -> Iterator[store.DocumentBlock]:
        """Each document's block, in the order of `items`; `skip(doc_id, answer)` for each one a
        worker could not index."""
        meter = Meter(progress, total_bytes)
        workers = max(1, len(self._guarded(self.client.nthreads)))
        window = TASKS_PER_WORKER * workers
        group_bytes = min(GROUP_BYTES, max(MIN_GROUP_BYTES, total_bytes // (2 * window)))
        pending: deque = deque()
        groups = iter(_groups(items, sizes, group_bytes))

        def submit() -> bool:
            group = next(groups, None)
            if group is not None:
                pending.append((group, self.client.submit(_embed_group, job, group, pure=False)))
            return group is not None

        while len(pending) < window and submit():
            pass
        while pending:
            group, future = pending.popleft()
            answers = self._result(future, group)
            submit()
            for item, answer in zip(group, answers):
                if isinstance(answer, Skipped):
                    skip(item.doc_id, answer)
                    continue
                meter.read(sizes.get(item.doc_id, 0), len(answer.chunks))
                meter.finished(len(answer.chunks))
                yield answer

    def _result(self, future, group: list[Item]):
        """The future's result; waits while the cluster has workers, stops when it has none."""
        from distributed.scheduler import KilledWorker

        alone_since = None
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:  # not done yet; is anyone still working on it?
                if self._guarded(self.client.nthreads):
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.monotonic()
                elif time.monotonic() - alone_since > WORKERS_SECONDS:
                    raise self._lost("every worker left") from None
            except _LOST as exc:
                raise self._lost(type(exc).__name__) from None
            except KilledWorker:
                raise ClusterError(
                    f"The task embedding {group[0].source} (and up to {len(group) - 1} more) killed the workers that ran it "
                    "(out of memory?); the index is unchanged. Give workers more memory, or leave those files out."
                ) from None

    def _guarded(self, call):
        try:
            return call()
        except _LOST as exc:
            raise self._lost(type(exc).__name__) from None

    def _lost(self, why: str) -> ClusterError:
        return ClusterError(
            f"Lost the Dask cluster at {self.address} mid-run ({why}); the index is unchanged: run ingest again once the cluster is back."
        )

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:
            pass
        if self.local is not None:
            try:
                self.local.close(timeout=10)
            except Exception:
                pass

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_local(workers: int):
    """A Dask cluster of `workers` processes on this machine, on 127.0.0.1 only, sharing its cores."""
    quiet_logs()
    from distributed import LocalCluster

    threads = max(1, (os.cpu_count() or 1) // workers)
    return LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, env={"QA_THREADS": str(threads)},
    )


def make_job(model: ModelSpec, settings: ChunkSettings, embedder: Embedder | None = None) -> Job:
    return Job(model=model, backend=backend_from_env(), fingerprint=model_fingerprint(model), code=code_fingerprint(), settings=settings, embedder=embedder)


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 over the project's code (qa/ and ingest/) and the versions of the libraries that
    read and split documents: what decides the chunks, offsets and skip reasons a worker sends
    back. Taken once per process, when it first ingests."""
    root = Path(__file__).resolve().parent.parent
    files = sorted([*(root / "qa").rglob("*.py"), *(root / "ingest").rglob("*.py")])
    return code_version(files, ["langchain-text-splitters", "pypdfium2"], root)


def model_fingerprint(spec: ModelSpec) -> str:
    """SHA-256 over the model folder's file names and bytes (hidden files left out); on a
    machine without that folder, the reason instead."""
    folder = bundled_model_path() if spec.path is None else Path(spec.path)
    if not folder.is_dir():
        return f"no model folder at {folder}"
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            digest.update(relative.as_posix().encode() + b"\0")
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()


def quiet_logs() -> None:
    """Dask logs reconnects and lost workers with tracebacks; the run reports them in one sentence."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _groups(items: Iterable[Item], sizes: dict[str, int], group_bytes: int) -> Iterator[list[Item]]:
    group: list[Item] = []
    size = 0
    for item in items:
        group.append(item)
        size += sizes.get(item.doc_id, 0)
        if size >= group_bytes or len(group) >= GROUP_FILES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _short(fingerprint: str) -> str:
    return f"SHA-256 {fingerprint[:12]}" if len(fingerprint) == 64 else fingerprint


# --- on the workers ---------------------------------------------------------------------------

_loaded: dict[tuple, Embedder] = {}
_load_lock = threading.Lock()
_embed_lock = threading.Lock()  # one embedding at a time per worker: it uses all the worker's threads


def _inspect_worker(model: ModelSpec, probe: str | None) -> tuple[str, str, str | None]:
    """(code fingerprint, model fingerprint, SHA-256 of the probe file or why it cannot be read)."""
    seen = None
    if probe is not None:
        try:
            seen = sha256(Path(probe).read_bytes())
        except OSError as exc:
            seen = exc.strerror or str(exc)
    return code_fingerprint(), model_fingerprint(model), seen


def _embedder(job: Job) -> Embedder:
    if job.embedder is not None:
        return job.embedder
    key = (job.model, job.backend, job.fingerprint)
    with _load_lock:
        if key not in _loaded:
            if model_fingerprint(job.model) != job.fingerprint:  # a worker that joined after the check
                raise ClusterError(
                    f"A worker that joined mid-run holds a different {job.model.name} model; "
                    "install the same requirements on every machine, then run ingest again."
                )
            if not os.environ.get("QA_THREADS"):
                from distributed import get_worker

                os.environ["QA_THREADS"] = str(get_worker().state.nthreads)
            _loaded.clear()
            _loaded[key] = load_embedder(job.model, job.backend)  # type: ignore[arg-type]
        return _loaded[key]


def _warm_up(job: Job) -> ModelSpec:
    return _embedder(job).spec


def _embed_group(job: Job, items: list[Item]) -> list[store.DocumentBlock | Skipped]:
    if code_fingerprint() != job.code:  # a worker that joined after the check
        raise ClusterError(
            "A worker that joined mid-run runs other project code than this checkout; the index is unchanged. "
            "Check out the same commit and install the same requirements on every machine, then run ingest again."
        )
    embedder = _embedder(job)
    answers: list[Skipped | None] = []  # None: indexed, its block comes from embed_stream below
    documents, sizes = [], {}
    for item in items:
        if item.error is not None:
            answers.append(Skipped(item.error, lasting=False))
            continue
        try:
            data = item.data if item.data is not None else Path(item.path).read_bytes()
            documents.append(load_document(Path(item.path), item.doc_id, item.source, data))
            sizes[item.doc_id] = len(data)
            answers.append(None)
        except OSError as exc:
            answers.append(Skipped(f"cannot be read on the worker ({exc.strerror or exc})", lasting=False))
        except DocumentError as exc:
            answers.append(Skipped(str(exc), lasting=True))
    with _embed_lock:
        blocks = iter(embed_stream(documents, embedder, Chunker(job.settings), sizes))
        return [next(blocks) if answer is None else answer for answer in answers]

