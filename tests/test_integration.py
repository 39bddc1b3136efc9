"""With the real bundled model: the command-line pipeline end to end, and the default corpus
answering the facts it was written to state."""

import json
import subprocess
import sys

import numpy as np
import pytest

import qa
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

# (question, the document that states the fact, a string the right answer holds)
FACTS = [
    ("Who led the team that created ImageNet?", "imagenet.md", "Fei-Fei Li"),
    ("At which conference was ImageNet presented?", "imagenet.md", "CVPR"),
    ("What hierarchy do ImageNet's categories follow?", "imagenet.md", "WordNet"),
    ("Who began WordNet?", "wordnet.txt", "Miller"),
    ("Which crowdsourcing platform verified ImageNet's labels?", "mechanical-turk.md", "Mechanical Turk"),
    ("How many workers labeled ImageNet on Mechanical Turk?", "mechanical-turk.md", "49,000"),
    ("How many images does the full ImageNet dataset hold?", "imagenet.md", "14,197,122"),
    ("How many synsets does ImageNet have?", "imagenet.md", "21,841"),
    ("How many categories did Caltech-101 have?", "earlier-datasets.md", "101"),
    ("How many classes did PASCAL VOC have?", "earlier-datasets.md", "20"),
    ("In which years did ILSVRC run?", "ilsvrc.md", "2010"),
    ("How many training images did the ILSVRC classification data contain?", "ilsvrc.md", "1.28 million"),
    ("How were ILSVRC entries ranked?", "ilsvrc.md", "top-5 error"),
    ("Who built AlexNet?", "alexnet.md", "Krizhevsky"),
    ("What top-5 error did AlexNet achieve in ILSVRC 2012?", "alexnet.md", "15.3%"),
    ("What GPUs was AlexNet trained on?", "alexnet.md", "GTX 580"),
    ("How many parameters did AlexNet have?", "alexnet.md", "60 million"),
    ("What top-5 error did ResNet achieve in 2015?", "later-winners.md", "3.57%"),
    ("How many layers did the deepest ResNet have?", "later-winners.md", "152"),
    ("Which network won the 2014 ImageNet classification challenge?", "later-winners.md", "GoogLeNet"),
    ("What top-5 error did SENet achieve?", "later-winners.md", "2.25%"),
    ("What human top-5 error did Andrej Karpathy measure?", "later-winners.md", "5.1%"),
    ("When did McCulloch and Pitts describe an artificial neuron?", "neural-network-prehistory.md", "1943"),
    ("Who introduced the perceptron?", "neural-network-prehistory.md", "Rosenblatt"),
    ("Why did GPUs make large-scale training practical?", "gpus.md", "parallel"),
    ("Who made ImageNet Roulette?", "criticism.md", "Crawford"),
    ("How many images of people were removed from ImageNet in 2019?", "criticism.md", "600,000"),
    ("When were faces in the ILSVRC images blurred?", "criticism.md", "2021"),
    ("What does ImageNet moment mean?", "imagenet-moment.html", "compelling"),
    ("Which models marked natural language processing's ImageNet moment?", "imagenet-moment.html", "BERT"),
    ("What applications are built on the ImageNet lineage?", "applications.md", "medical imaging"),
]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("corpus-index")
    run = subprocess.run(
        [sys.executable, "-m", "ingest", "corpus", "--index", str(index_dir), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["added"] == 12 and not report["skipped"]
    return index_dir


def test_unchanged_rerun_embeds_nothing(corpus_index):
    run = subprocess.run(
        [sys.executable, "-m", "ingest", "corpus", "--index", str(corpus_index), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    report = json.loads(run.stdout)
    assert report["unchanged"] == 12 and report["embedded_chunks"] == 0


def test_cli_answers_with_exact_offsets_into_the_files(corpus_index):
    run = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "-", "--index", str(corpus_index), "--json"],
        cwd=ROOT, input="\n".join(q for q, _, _ in FACTS[:8]), capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["question"] for a in answers] == [q for q, _, _ in FACTS[:8]]
    for answer in answers:
        for c in answer["citations"]:
            if c["source"].endswith((".md", ".txt")):
                assert (ROOT / c["source"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == c["text"]
        if answer["answer"] is not None:
            holders = [c for c in answer["citations"] if c["answer_start"] is not None]
            assert len(holders) == 1
            assert holders[0]["text"][holders[0]["answer_start"] : holders[0]["answer_end"]] == answer["answer"]


def test_each_fact_is_found_in_the_document_that_states_it(corpus_index):
    engine = qa.load(corpus_index)
    missed, correct = [], 0
    for question, document, expected in FACTS:
        answer = engine.ask(question, k=5)
        sources = [c.source.rsplit("/", 1)[-1] for c in answer.citations[:3]]
        if document not in sources:
            missed.append((question, document, sources))
        correct += bool(answer.answer) and expected.lower() in answer.answer.lower()
    print(f"\n{correct}/{len(FACTS)} fact questions answered with the expected span")
    assert not missed, missed


@pytest.mark.parametrize("question", ["Who won the 2018 World Cup?", "What is the capital of Australia?", "How many legs does a spider have?"])
def test_questions_the_corpus_does_not_answer_are_declined(corpus_index, question):
    answer = qa.load(corpus_index).ask(question, k=5)
    assert answer.no_answer and answer.answer is None
    assert answer.citations  # the closest passages are still shown
