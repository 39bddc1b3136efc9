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
