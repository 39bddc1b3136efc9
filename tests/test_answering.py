"""The engine and `python -m qa ask`, on small indexes built with the fake embedder."""

import io
import json
import sys
import warnings

import pytest

import qa
from ingest.sync import sync
from qa.__main__ import main as qa_main
from qa.cli_support import run_safely
from qa.errors import BadQuestion, IndexNotFound
from qa.reader import Reader
from tests.conftest import write


@pytest.fixture
def engine(small_corpus, tmp_path, fake_embedder):
    write(small_corpus / "long.md", "# Long\n\n" + "\n\n".join(f"Paragraph {i} about topic {i} and AlexNet. " * 8 for i in range(30)))
    sync([small_corpus], tmp_path / "index", embedder=fake_embedder)
    return qa.load(tmp_path / "index", embedder=fake_embedder)


def test_answer_is_a_verbatim_span_of_a_cited_passage(engine, small_corpus):
    answer = engine.ask("What top-5 error did AlexNet win the 2012 challenge with?", k=5)
    assert answer.citations and len(answer.citations) <= 5
    for citation in answer.citations:
        assert (small_corpus / citation.chunk_id.split("#")[0]).read_text()[citation.start : citation.end] == citation.text
    holders = [c for c in answer.citations if c.answer_start is not None]
    if not answer.no_answer:
        assert len(holders) == 1
        assert holders[0].text[holders[0].answer_start : holders[0].answer_end] == answer.answer
        assert answer.context in holders[0].text


def test_overlapping_chunks_are_merged_not_cited_twice(engine):
    answer = engine.ask("Paragraph topic AlexNet", k=10)
    spans = [(c.source, c.start, c.end) for c in answer.citations]
    for i, (src, start, end) in enumerate(spans):
        for other_src, other_start, other_end in spans[i + 1 :]:
            assert src != other_src or end <= other_start or other_end <= start


def test_a_heading_that_restates_the_question_is_not_the_answer(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    write(docs / "uses.md", "# Applications built on ImageNet\n\nThey include medical imaging, robotics and self-driving cars.\n")
    sync([docs], tmp_path / "index", embedder=fake_embedder)
    answer = qa.load(tmp_path / "index", embedder=fake_embedder).ask("What applications are built on ImageNet?")
    assert answer.context.startswith("They include medical imaging")
    assert "medical imaging" in (answer.answer or answer.context)


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question_is_refused_and_searches_nothing(engine, question):
    calls = engine.embedder.calls
    with pytest.raises(BadQuestion, match="empty"):
        engine.ask(question)
    assert engine.embedder.calls == calls


@pytest.mark.parametrize(
    "question",
    ["<script>alert(1)</script>", "'; DROP TABLE chunks; --", "¿Quién creó ImageNet? 🤖", "שלום עולם", "%%% ### !!!", "a\x00b"],
)
def test_odd_questions_get_an_answer_or_an_abstention(engine, question):
    answer = engine.ask(question)
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.no_answer == (answer.answer is None)


def test_very_long_question_is_cut_with_a_notice(engine):
    answer = engine.ask("AlexNet " * 1000)
    assert answer.notice and "2,000" in answer.notice
    assert len(answer.question) == 2000


def test_missing_index_says_how_to_build_one(tmp_path, fake_embedder):
    with pytest.raises(IndexNotFound, match="python -m ingest"):
        qa.load(tmp_path / "none", embedder=fake_embedder)


def test_cli_json_has_the_documented_shape(engine, capsys):
    code = qa_main(["ask", "Who began WordNet?", "--index", str(engine.index.directory), "--json", "--k", "3"], embedder=engine.embedder)
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"question", "answer", "confidence", "no_answer", "read_as", "citations"}
    assert out["read_as"] is None  # asked alone, nothing is carried over
    assert set(out["citations"][0]) == {"rank", "source", "title", "page", "section", "start", "end", "text", "score", "answer_start", "answer_end"}
    assert [c["rank"] for c in out["citations"]] == list(range(1, len(out["citations"]) + 1))


def test_cli_reads_questions_from_stdin_one_json_per_line(engine, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Who began WordNet?\n\nWho led ImageNet?\n"))
    qa_main(["ask", "-", "--index", str(engine.index.directory), "--json"], embedder=engine.embedder)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["question"] for line in lines] == ["Who began WordNet?", "Who led ImageNet?"]


def test_cli_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert qa_main(["ask", "anything", "--index", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_warnings_are_one_sentence_without_the_code_that_raised_them(capsys):
    def command() -> int:
        warnings.warn("The index holds fp32 vectors; using onnx.", RuntimeWarning)
        return 0

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert run_safely(command) == 0
    assert capsys.readouterr().err == "warning: The index holds fp32 vectors; using onnx.\n"


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("When was ImageNet presented?", "ImageNet was presented at CVPR in June 2009 in Miami.", "June 2009"),
        ("How many images does ImageNet hold?", "ImageNet holds 14,197,122 images in 21,841 synsets.", "14,197,122"),
        ("Who began WordNet?", "WordNet was begun at Princeton by George A. Miller.", "George A. Miller"),
        ("What top-5 error did AlexNet reach?", "AlexNet reached a top-5 error of 15.3% in 2012.", "15.3%"),
        ("How many GPUs was AlexNet trained on?", "AlexNet was trained for five to six days on two NVIDIA GTX 580 GPUs.", "two"),
        ("Who was Geoffrey Hinton's student?", "Alex Krizhevsky, a student of Geoffrey Hinton, wrote the code.", "Alex Krizhevsky"),
        ("What kind of network was AlexNet?", "AlexNet was a deep convolutional network trained on two GPUs.", "deep convolutional"),
        ("What is the term for groups of synonyms in WordNet?", "In WordNet, groups of synonyms are called synsets.", "synsets"),
    ],
)
def test_the_reader_picks_the_thing_asked_for(question, sentence, expected):
    """The best span starts with what is asked for and adds at most a few words around it
    (whether it clears the no-answer margin is tested in tests/test_reader.py)."""
    reading = Reader().extract(question, [sentence])
    assert reading.best.text.startswith(expected)
    assert len(reading.best.text.split()) <= len(expected.split()) + 3
