"""Follow-up questions (issue 16): the rules that read a follow-up with its conversation, the
engine and command line that carry it, and the measured gain on tests/conversations.json."""

from __future__ import annotations

import io
import json
import time

import pytest

from qa.__main__ import main as qa_main
from qa.conversation import MAX_TURNS, Turn, resolve

MTURK = [Turn("What did the ImageNet team use to label its images?", "Amazon Mechanical Turk")]
FEI_FEI = [Turn("Who led the team that created ImageNet?", "Fei-Fei Li")]


@pytest.mark.parametrize("history, question, read_as", [
    (MTURK, "What did it cost?", "What did Amazon Mechanical Turk cost?"),
    (MTURK, "When did Amazon launch it?", "When did Amazon launch Amazon Mechanical Turk?"),
    (MTURK, "How were the workers checked?", "How were the workers checked (Amazon Mechanical Turk)?"),
    (FEI_FEI, "Where did she work before?", "Where did Fei-Fei Li work before?"),
    (FEI_FEI, "What was her role at Princeton?", "What was Fei-Fei Li's role at Princeton?"),
    (FEI_FEI, "Which student worked with her?", "Which student worked with Fei-Fei Li?"),
    (FEI_FEI, "When was it released?", "When was ImageNet released?"),  # "it" is not the person the answer named
    ([Turn("Which company made the GPUs AlexNet used?", "NVIDIA")], "What else did that company make?", "What else did NVIDIA make?"),
    ([Turn("When did AlexNet win the challenge?", "2012")], "Who won detection the same year?", "Who won detection the same year (2012)?"),
    ([Turn("How many layers did VGG have?", "19")], "And ResNet?", "How many layers did ResNet have?"),
    ([Turn("Which network won ILSVRC in 2014?", "GoogLeNet")], "What about 2015?", "Which network won ILSVRC in 2015?"),
    ([Turn("Who won ILSVRC 2012?", "AlexNet")], "Why?", "Why (ILSVRC 2012)?"),
    ([Turn("Who built AlexNet?", "Alex Krizhevsky"), Turn("Which GPUs was AlexNet trained on?", "two GTX 580 cards")],
     "How long did its training take?", "How long did AlexNet's training take?"),  # the topic goes on
    ([Turn("Which company did Geoffrey Hinton form?", "DNNresearch"), Turn("Which company acquired DNNresearch?", "Google")],
     "What prize did he win?", "What prize did Geoffrey Hinton win?"),  # the latest person, not the latest name
])
def test_a_follow_up_is_read_with_what_it_refers_to(history, question, read_as):
    reading = resolve(question, history)
    assert reading.question == read_as and reading.carried


@pytest.mark.parametrize("question", [
    "How many images does ImageNet hold?",
    "Is it true that ImageNet has 14 million images?",  # "it" points nowhere
    "How long did it take to label ImageNet?",
    "What is a convolutional network?",
    "Did Fei-Fei Li leave her post at Princeton?",  # "her" points into the question
])
def test_a_question_that_stands_on_its_own_is_left_alone(question):
    assert resolve(question, FEI_FEI) == resolve(question, None)
    assert resolve(question, FEI_FEI).carried is None


def test_nothing_to_carry_over_a_first_question_abstentions_and_errors():
    assert resolve("What did it cost?", None).carried is None
    assert resolve("What did it cost?", []).carried is None
    skipped = [Turn("What did the team use?", None), Turn("", "Amazon Mechanical Turk")]  # an abstention, an error
    assert resolve("What did it cost?", skipped).carried is None
    assert resolve("What did it cost?", MTURK + skipped).question == "What did Amazon Mechanical Turk cost?"


def test_only_the_last_turns_matter_however_long_the_conversation():
    old = [Turn(f"Who won challenge number {n}?", f"Team Number{n}") for n in range(2000)]
    began = time.perf_counter()
    reading = resolve("Who founded that team?", old + MTURK)
    assert time.perf_counter() - began < 1.0  # bounded: it looks at the last MAX_TURNS usable turns
    assert reading.question == "Who founded Amazon Mechanical Turk?"
    assert MAX_TURNS <= 5


# --- the engine and the command line, with the fake embedder and the shipped reader ----------------


def test_a_standalone_question_gets_the_same_answer_and_citations_with_history(engine):
    history = [Turn("Who began WordNet?", "George A. Miller")]
    for question in ["What did AlexNet win in 2012?", "How many images does ImageNet hold?"]:
        alone, followed = engine.ask(question), engine.ask(question, history=history)
        assert followed.read_as is None
        assert (followed.answer, followed.citations) == (alone.answer, alone.citations)


def test_the_answer_says_how_a_follow_up_was_read(engine):
    answer = engine.ask("Where was it begun?", history=[Turn("What is WordNet?", "a lexical database")])
    assert answer.question == "Where was it begun?"
    assert answer.read_as == "Where was WordNet begun?"
    assert answer.to_json()["read_as"] == answer.read_as


def test_ask_follow_ups_reads_conversations_from_stdin(engine, monkeypatch, capsys):
    lines = "Who began WordNet?\nWhere was it begun?\n\nWhere was it begun?\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert qa_main(["ask", "-", "--json", "--follow-ups", "--index", str(engine.index.directory)], embedder=engine.embedder) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["read_as"] for o in out] == [None, "Where was WordNet begun?", None]  # the blank line started a new conversation


def test_ask_without_follow_ups_reads_each_question_alone(engine, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Who began WordNet?\nWhere was it begun?\n"))
    assert qa_main(["ask", "-", "--json", "--index", str(engine.index.directory)], embedder=engine.embedder) == 0
    assert [json.loads(line)["read_as"] for line in capsys.readouterr().out.splitlines()] == [None, None]


def test_chat_follows_the_conversation_in_the_terminal(engine, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Who began WordNet?\nWhere was it begun?\n\nWhere was it begun?\n"))
    assert qa_main(["chat", "--index", str(engine.index.directory)], embedder=engine.embedder) == 0
    captured = capsys.readouterr()
    assert captured.out.count("(read as: Where was WordNet begun?)") == 1
    assert "(new conversation)" in captured.err


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from ingest.sync import sync
    from qa.engine import Engine
    from tests.conftest import FakeEmbedder, write

    docs = tmp_path_factory.mktemp("docs")
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database of English begun at Princeton by George A. Miller in 1985.\n")
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet won the ImageNet challenge in 2012 with a top-5 error of 15.3%.\n")
    write(docs / "imagenet.md", "# ImageNet\n\nImageNet holds more than 14 million images in about 22,000 categories.\n")
    index = tmp_path_factory.mktemp("index")
    embedder = FakeEmbedder()
    sync([docs], index, embedder=embedder)
    return Engine.load(index, embedder=embedder)


@pytest.mark.integration
def test_the_conversation_answers_more_follow_ups_than_asking_them_alone(tmp_path):
    """tests/conversations.json on corpus/ with the real model (`python -m tests.conversations`)."""
    from ingest.sync import sync
    from qa.engine import Engine
    from tests import conversations

    index = tmp_path / "index"
    sync([conversations.ROOT / "corpus"], index)
    results = conversations.measure(Engine.load(index), json.loads(conversations.CONVERSATIONS.read_text(encoding="utf-8")))
    assert results["right_with_history"] > results["right_without_history"] + results["follow_ups"] // 4
