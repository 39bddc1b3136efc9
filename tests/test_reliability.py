"""Crash safety, concurrency and incremental-equals-fresh, with the fake embedder.

The SIGKILL test runs the real ingest code in a child process (with a deliberately slow fake
embedder so a run lasts seconds) and kills it at seeded random moments.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa
from ingest.sync import sync
from qa import store
from tests.conftest import ROOT, FakeEmbedder, write

WORDS = "imagenet alexnet wordnet gpu error layer network dataset label image class crowd turk error".split()


def make_corpus(folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(count):
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(6)]
        write(folder / f"doc{i:03d}.md", f"# Document {i}\n\n" + "\n\n".join(paragraphs) + "\n")


def snapshot(index_dir: Path) -> dict:
    index = store.load_index(index_dir)
    return {c.id: c.text for c in index.chunks}


DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.conftest import FakeEmbedder
from ingest.__main__ import main

class Slow(FakeEmbedder):
    def encode_passages(self, texts, progress=None):
        out = []
        for i in range(0, len(texts), 16):
            time.sleep({delay})
            out.append(self.encode_queries(list(texts[i:i + 16])))
        import numpy as np
        return np.concatenate(out) if out else np.zeros((0, self.spec.dimension), np.float32)

sys.exit(main([{docs!r}, "--index", {index!r}, "--json"], embedder=Slow()))
"""


def test_sigkill_at_random_moments_leaves_old_or_new_index(tmp_path, fake_embedder):
    docs, pristine = tmp_path / "docs", tmp_path / "pristine"
    make_corpus(docs, 30, seed=1)
    sync([docs], pristine, embedder=fake_embedder)
    old = snapshot(pristine)
    make_corpus(docs, 45, seed=2)  # every document changes and 15 are new
    (docs / "doc000.md").unlink()
    reference = tmp_path / "reference"
    sync([docs], reference, embedder=fake_embedder)
    new = snapshot(reference)

    rng = random.Random(20261123)
    outcomes = {"old": 0, "new": 0}
    for trial in range(20):
        index_dir = tmp_path / f"trial{trial}"
        shutil.copytree(pristine, index_dir)
        child = subprocess.Popen(
            # as slow as the run was when sentences were embedded too, so kills land all through it
            [sys.executable, "-c", DRIVER.format(root=str(ROOT), docs=str(docs), index=str(index_dir), delay=0.12)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        state = snapshot(index_dir)  # loads and passes its own checks
        assert state in (old, new), f"trial {trial}: a mix of old and new"
        outcomes["old" if state == old else "new"] += 1
        report = sync([docs], index_dir, embedder=fake_embedder)  # the next run completes...
        assert snapshot(index_dir) == new
        assert not list(index_dir.glob(".staging-*")) and not (index_dir / "CURRENT.tmp").exists()  # ...and cleans up
        assert len([p for p in index_dir.iterdir() if p.name.startswith("v")]) <= 2, report
    print(f"\nkill trials: {outcomes}")
    assert sum(outcomes.values()) == 20


def test_a_second_ingest_process_is_refused_while_one_runs(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    make_corpus(docs, 40, seed=3)
    index_dir = tmp_path / "index"
    child = subprocess.Popen(
        # slow enough that the first run still holds the lock when the second starts
        [sys.executable, "-c", DRIVER.format(root=str(ROOT), docs=str(docs), index=str(index_dir), delay=0.5)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 30
        while not (index_dir / ".lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        second = subprocess.run(
            [sys.executable, "-m", "ingest", str(docs), "--index", str(index_dir)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1
        assert "Another ingest is already updating" in second.stderr and "Traceback" not in second.stderr
    finally:
        assert child.wait(timeout=120) == 0
    assert len(snapshot(index_dir)) > 0


def test_questions_from_eight_threads_while_the_index_is_swapped(tmp_path):
    embedder = FakeEmbedder()
    docs = tmp_path / "docs"
    make_corpus(docs, 10, seed=4)
    index_dir = tmp_path / "index"
    sync([docs], index_dir, embedder=embedder)
    engine = qa.load(index_dir, embedder=embedder)
    versions = {engine.index.version: {c.text for c in engine.index.chunks}}
    errors, answers = [], []
    stop = threading.Event()

    def asker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            try:
                answers.append(engine.ask(" ".join(rng.choice(WORDS) for _ in range(4)), k=3))
            except Exception as exc:  # any error at all fails the test
                errors.append(repr(exc))

    threads = [threading.Thread(target=asker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    round_ = 0
    while any(t.is_alive() for t in threads) and round_ < 20:
        round_ += 1
        make_corpus(docs, 10 + round_, seed=100 + round_)
        sync([docs], index_dir, embedder=embedder)
        engine.reload()
        index = engine.index
        versions[index.version] = {c.text for c in index.chunks}
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(answers) == 1600
    assert len(versions) > 1
    for answer in answers:  # every citation comes from the one version the answer names
        texts = versions[answer.index_version]
        for citation in answer.citations:
            assert any(citation.text in t or t in citation.text for t in texts)


@st.composite
def edit_sequences(draw):
    names = [f"n{i}.md" for i in range(6)]
    return draw(
        st.lists(
            st.tuples(st.sampled_from(["write", "delete", "sync"]), st.sampled_from(names), st.lists(st.sampled_from(WORDS), min_size=1, max_size=200)),
            min_size=1,
            max_size=12,
        )
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edit_sequences())
def test_any_sequence_of_edits_equals_a_fresh_build(tmp_path_factory, edits):
    root = tmp_path_factory.mktemp("prop")
    docs, index_dir, fresh_dir = root / "docs", root / "index", root / "fresh"
    docs.mkdir()
    embedder = FakeEmbedder()
    for action, name, words in edits:
        if action == "write":
            write(docs / name, "# T\n\n" + " ".join(words) + ".\n")
        elif action == "delete" and (docs / name).exists():
            (docs / name).unlink()
        else:
            sync([docs], index_dir, embedder=embedder)
    sync([docs], index_dir, embedder=embedder)
    sync([docs], fresh_dir, embedder=embedder)
    a, b = store.load_index(index_dir), store.load_index(fresh_dir)
    assert [(c.id, c.text, c.start, c.end) for c in a.chunks] == [(c.id, c.text, c.start, c.end) for c in b.chunks]
    assert np.allclose(a.vectors, b.vectors, atol=1e-6)
