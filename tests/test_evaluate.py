"""`qa eval`: reading SQuAD files into documents, and fitting the no-answer margin and confidence."""

from __future__ import annotations

import json

import pytest

from qa import evaluate
from tests.conftest import FakeEmbedder


def _squad(path, articles):
    data = {"version": "v2.0", "data": [
        {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": f"{title}-{n}-{i}", "question": q, "is_impossible": answer is None,
             "answers": [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]}
            for i, (q, answer) in enumerate(qas)]} for context, qas in paragraphs]}
        for n, (title, paragraphs) in enumerate(articles)]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_articles_that_share_a_title_are_separate_documents_and_keep_their_answers(tmp_path):
    path = _squad(tmp_path / "dev.json", [
        ("Paris", [("Paris is the capital of France.", [("What is Paris the capital of?", "France")])]),
        ("Paris", [("Paris was a prince of Troy.", [("Where was Paris a prince?", "Troy"), ("Who was his wife?", None)])]),
    ])
    dataset = evaluate.read_dataset(path)
    assert len({d.id for d in dataset.documents}) == 2
    texts = {d.id: d.text for d in dataset.documents}
    for question in dataset.questions:
        for doc_id, start, end in question.spans:
            assert texts[doc_id][start:end] in question.answers
    summary, records = evaluate.run(path, None, k=5, embedder=FakeEmbedder())
    assert summary["questions"] == 3 and summary["recall@5"] == 1.0
    assert [r["impossible"] for r in records] == [False, False, True]


def test_unseen_leaves_out_the_questions_the_reader_was_trained_on_and_keeps_every_paragraph(tmp_path):
    from qa.errors import QAError
    from qa.reader import question_key

    path = _squad(tmp_path / "train.json", [
        ("Paris", [("Paris is the capital of France.", [("What is Paris the capital of?", "France")])]),
        ("Troy", [("Paris was a prince of Troy.", [("Where was Paris a prince?", "Troy"), ("What is Paris the capital of?", None)])]),
    ])
    dataset = evaluate.read_dataset(path)
    first = dataset.questions[0]
    trained = {question_key(first.text, first.paragraph)}  # the same words asked of the other paragraph stay
    summary, records = evaluate.run(path, None, k=5, embedder=FakeEmbedder(), leave_out=trained)
    assert [r["question"] for r in records] == ["Where was Paris a prince?", "What is Paris the capital of?"]
    assert evaluate.unseen(dataset, trained, path).documents == dataset.documents
    everything = {question_key(q.text, q.paragraph) for q in dataset.questions}
    with pytest.raises(QAError, match="trained on every question"):
        evaluate.unseen(dataset, everything, path)


def test_unseen_with_a_reader_that_does_not_list_its_training_is_one_sentence(tmp_path, capsys):
    from qa.__main__ import main

    path = _squad(tmp_path / "train.json", [("Paris", [("Paris is the capital of France.", [("What is Paris the capital of?", "France")])])])
    assert main(["eval", str(path), "--unseen", "--reader", str(tmp_path)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "trained-on.txt" in error and "Traceback" not in error


def _record(support: float, answer: str, gold: list[str]) -> dict:
    return {"answer": answer, "answers": gold, "impossible": not gold,
            "signals": {"support": support, "margin": 1.0, "score": 5.0}}


def test_calibration_fits_the_support_answers_are_chosen_by():
    right = [_record(8.0 + i / 10, "Troy", ["Troy"]) for i in range(20)]
    unanswerable = [_record(1.0 + i / 10, "Troy", []) for i in range(20)]
    fitted = evaluate.calibrate(right + unanswerable)
    assert 2.9 <= fitted["no_answer_margin"] < 8.0, "abstains on every unanswerable record, answers every right one"
    assert fitted["squad2_f1"] == pytest.approx(100.0)
    assert fitted["calibration"]["slope"] > 0


def test_calibration_without_any_answer_says_what_to_check():
    with pytest.raises(evaluate.QAError, match="nothing can be calibrated"):
        evaluate.calibrate([{"answer": None, "answers": ["x"], "impossible": False, "signals": {}}])


@pytest.mark.integration
def test_never_abstain_answers_what_the_margin_would_decline(tmp_path, capsys):
    from qa.__main__ import main

    path = _squad(tmp_path / "dev.json", [
        ("Troy", [("Paris was a prince of Troy. He took Helen from Sparta to Troy.",
                   [("Which city was Paris a prince of?", "Troy"), ("Which Trojan prince married Andromache?", None)])]),
    ])
    dumps = {}
    for flags in ([], ["--never-abstain"]):
        dumps[bool(flags)] = tmp_path / f"dump{len(flags)}.jsonl"
        assert main(["eval", str(path), "--json", "--dump", str(dumps[bool(flags)]), *flags]) == 0
    capsys.readouterr()
    default, never = ([json.loads(line) for line in p.read_text().splitlines()] for p in (dumps[False], dumps[True]))
    assert default[1]["no_answer"], "the reader declines the question the passage does not answer"
    assert all(not r["no_answer"] and r["answer"] for r in never), "with --never-abstain it answers every question"
    assert never[0]["answer"] == "Troy"


def _asked(right: bool, group) -> dict:
    return {"impossible": False, "answers": ["Troy"], "answer": "Troy" if right else "Sparta", "context": None,
            "confidence": 0.9 if right else 0.2, "no_answer": False, "first_relevant": 1, "latency_ms": 1.0, "group": group}


def test_intervals_hold_the_figure_and_widen_when_questions_share_a_paragraph():
    records = [_asked(i % 2 == 0, i) for i in range(40)]
    spread = evaluate.intervals(records)
    low, high = spread["f1"]
    assert low < evaluate.summarize(records)["f1"] == 50.0 < high
    assert spread["recall@5"] == (1.0, 1.0), "every question found its passage in every resample"
    assert "no_answer_auroc" not in spread, "no unanswerable question, no AUROC to bound"
    # the same answers, the right ones asked of one paragraph and the wrong of another: two pieces of evidence
    shared = [dict(r, group="right" if r["answer"] == "Troy" else "wrong") for r in records]
    shared_low, shared_high = evaluate.intervals(shared)["f1"]
    assert shared_high - shared_low > 2 * (high - low)


def test_auroc_is_the_chance_an_answerable_question_scores_above_an_unanswerable_one():
    assert evaluate.auroc([1, 2, 2, 3], [False, True, False, True]) == 0.875, "a tie counts half"
    assert evaluate.auroc([0.1, 0.9], [True, False]) == 0.0
    assert evaluate.auroc([0.5, 0.6], [True, True]) is None


def test_against_another_run_measures_a_difference_their_own_intervals_cannot_show():
    before = [_asked(i % 2 == 0, i) for i in range(40)]
    after = [dict(r, answer="Troy") if i in (1, 3, 5, 7) else r for i, r in enumerate(before)]  # four more right
    low, high = evaluate.intervals(after, before)["f1"]
    assert 0 < low <= 10.0 <= high, "the four answers put right are a measured gain"
    after_low, _ = evaluate.intervals(after)["f1"]
    _, before_high = evaluate.intervals(before)["f1"]
    assert before_high > after_low, "the runs' own intervals overlap: compared apart, they could not tell"
    assert evaluate.intervals(before, before)["f1"] == (0.0, 0.0)


def test_against_a_dump_of_other_questions_or_no_dump_is_one_sentence(tmp_path, capsys):
    from qa.__main__ import main

    path = _squad(tmp_path / "dev.json", [("Troy", [("Paris was a prince of Troy.", [("Where was Paris a prince?", "Troy")])])])
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n", encoding="utf-8")
    for dump, says in ((broken, "is not a file written by qa eval --dump"), (tmp_path / "missing.jsonl", "Cannot read")):
        assert main(["eval", str(path), "--against", str(dump)]) == 1  # refused before any question is asked
        error = capsys.readouterr().err.strip()
        assert says in error and error.count("\n") == 0 and "Traceback" not in error
    other = [_asked(True, 0) | {"question": "Who was Helen?"}]
    with pytest.raises(evaluate.QAError, match=r"holds other questions than this run \(1 against 1\)"):
        evaluate.check_same_questions(other, [_asked(True, 0) | {"question": "Where was Paris a prince?"}], tmp_path / "x.jsonl")
