"""The trained reader: windows, span offsets, abstention, damaged weights, and training itself."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.embedder import bundled_model_path
from qa.errors import ModelError
from qa.reader import SHIPPED, Reader
from qa.reader.windows import MAX_QUESTION_TOKENS, Window, best_spans, load_tokenizer, windows

WORDNET = "WordNet is a lexical database of English, begun at Princeton University in 1985 by the psychologist George A. Miller."


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(bundled_model_path())


@pytest.fixture(scope="module")
def reader():
    reader = Reader()
    reader.warm_up()
    return reader


def test_a_long_passage_is_read_in_overlapping_windows(tokenizer):
    passage = " ".join(f"Sentence {i} says that item {i} weighs {i * 7} grams." for i in range(120))
    found = windows(tokenizer, "How much does item 40 weigh?", [passage], max_length=128, stride=32)
    assert len(found) > 5
    assert all(len(w.ids) <= 128 for w in found)
    covered = [tuple(o) for w in found for o in w.offsets if o is not None]
    pieces = tokenizer.encode(passage, add_special_tokens=False).offsets
    assert set(covered) == {tuple(o) for o in pieces}, "every word piece of the passage is in some window"
    for first, second in zip(found, found[1:]):
        tail = [o for o in first.offsets if o is not None][-32:]
        head = [o for o in second.offsets if o is not None][:32]
        assert tail == head, "consecutive windows share `stride` word pieces"


def test_windows_refuse_a_stride_that_leaves_no_progress(tokenizer):
    with pytest.raises(ValueError, match="stride must be less than"):
        windows(tokenizer, "Why?", ["a passage"], max_length=32, stride=40)


def test_a_question_longer_than_the_window_is_cut(tokenizer):
    question = "Which " + "very " * 200 + "long question is this?"
    (window,) = windows(tokenizer, question, ["A short passage."], max_length=256, stride=32)
    assert window.offsets.count(None) == MAX_QUESTION_TOKENS + 3  # [CLS] question [SEP] ... [SEP]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=12, max_size=12),
       st.lists(st.floats(-10, 10, allow_nan=False), min_size=12, max_size=12))
def test_decoded_spans_stay_inside_the_passage(start_logits, end_logits):
    offsets = [None, None, None, (0, 4), (5, 9), (10, 12), (13, 20), (21, 22), (23, 30), (31, 35), (36, 40), None]
    window = Window(passage=0, ids=list(range(12)), type_ids=[0] * 3 + [1] * 9, offsets=offsets)
    spans = best_spans(window, np.array(start_logits), np.array(end_logits), max_answer_tokens=3)
    assert spans, "a window with passage tokens always has a best span"
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    for span in spans:
        assert 0 <= span.start < span.end <= 40
        first = next(i for i, o in enumerate(offsets) if o and o[0] == span.start)
        last = next(i for i, o in enumerate(offsets) if o and o[1] == span.end)
        assert 0 <= last - first < 3
        assert span.null == start_logits[0] + end_logits[0]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300), min_size=1, max_size=3),
       st.text(min_size=1, max_size=80))
def test_every_answer_is_the_exact_characters_of_its_passage(reader, passages, question):
    reading = reader.extract(question, passages)
    if reading.best is not None:
        best = reading.best
        assert passages[best.passage][best.start : best.end] == best.text
        assert 0.0 <= best.confidence <= 1.0


def test_reads_the_answer_and_its_offsets(reader):
    passages = ["The weather in Paris was mild that spring.", WORDNET]
    reading = reader.extract("Who began WordNet?", passages)
    assert reading.answered
    assert reading.best.passage == 1
    assert "Miller" in reading.best.text
    assert passages[1][reading.best.start : reading.best.end] == reading.best.text
    assert reading.passage_scores[1] > reading.passage_scores[0]


def test_the_answer_of_a_long_passage_is_found_past_the_first_window(reader):
    filler = " ".join(f"In year {1900 + i} the village held its fair in the square." for i in range(60))
    passage = filler + " " + WORDNET
    reading = reader.extract("Who began WordNet?", [passage])
    assert "Miller" in reading.best.text
    assert reading.best.start > 1500
    assert passage[reading.best.start : reading.best.end] == reading.best.text


def test_abstains_when_no_answer_wins(reader):
    off_topic = reader.extract("Which team won the 2018 football World Cup final?", [WORDNET])
    assert not off_topic.answered
    strict = Reader(no_answer_margin=math.inf)
    assert not strict.extract("Who began WordNet?", [WORDNET]).answered


class _Logits:
    """Stands in for the ONNX session: start and end logits set per word (-20 elsewhere), and a
    window holding a word of `nulls` gets that no-answer score on [CLS]."""

    def __init__(self, tokenizer, starts: dict[str, float], ends: dict[str, float], nulls: dict[str, float] | None = None) -> None:
        ids = tokenizer.token_to_id
        self.starts, self.ends = {ids(w): v for w, v in starts.items()}, {ids(w): v for w, v in ends.items()}
        self.nulls = {ids(w): v for w, v in (nulls or {}).items()}

    def run(self, _names, feeds):
        ids = feeds["input_ids"]
        start = np.vectorize(lambda i: self.starts.get(int(i), -20.0))(ids).astype(np.float32)
        end = np.vectorize(lambda i: self.ends.get(int(i), -20.0))(ids).astype(np.float32)
        for row in range(ids.shape[0]):
            for token in ids[row]:
                if int(token) in self.nulls:
                    start[row, 0] = end[row, 0] = self.nulls[int(token)] / 2
        return start, end


def _planned_reader(tokenizer, plan, margin: float = 0.0) -> Reader:
    """`plan`: word -> (its window's no-answer score, the word's own span score)."""
    reader = Reader(no_answer_margin=margin)
    half = {word: span / 2 for word, (_, span) in plan.items()}
    reader._tokenizer = tokenizer
    reader._session = _Logits(tokenizer, half, half, {word: null for word, (null, _) in plan.items()})
    return reader


PASSAGES = ["The prize went to paris.", "The prize went to london."]


def test_spans_compare_across_passages_by_their_margin_over_no_answer(tokenizer):
    # paris scores higher, but its window's no-answer score is higher still: london has more support
    reader = _planned_reader(tokenizer, {"paris": (9.0, 10.0), "london": (2.0, 6.0)})
    reading = reader.extract("Where did the prize go?", PASSAGES)
    assert reading.best.text == "london"
    assert (reading.best.score, reading.best.margin, reading.best.support) == (6.0, 4.0, 4.0)
    assert reading.passage_scores == [1.0, 4.0], "each passage's best support, for citation order"


def test_a_passage_prior_adds_to_its_spans_support_and_decides_the_answer(tokenizer):
    reader = _planned_reader(tokenizer, {"paris": (0.0, 5.0), "london": (0.0, 4.0)}, margin=5.5)
    plain = reader.extract("Where did the prize go?", PASSAGES)
    assert plain.best.text == "paris" and not plain.answered, "a margin of 5 does not reach 5.5"
    backed = reader.extract("Where did the prize go?", PASSAGES, priors=[0.0, 3.0])
    assert backed.best.text == "london" and backed.answered
    assert (backed.best.margin, backed.best.support) == (4.0, 7.0)
    assert backed.best.confidence == reader.confidence(7.0) > plain.best.confidence
    with pytest.raises(ValueError, match="one prior per passage"):
        reader.extract("Where did the prize go?", PASSAGES, priors=[1.0])


def test_an_answer_does_not_run_on_past_the_end_of_a_paragraph(tokenizer):
    reader = Reader(no_answer_margin=-math.inf)
    reader._tokenizer, reader._session = tokenizer, _Logits(tokenizer, {"winners": 10.0, "smith": 8.0}, {"smith": 10.0})
    passage = "Winners\n \nSmith won the prize in 2015."
    assert reader.extract("Who won the prize?", [passage]).best.text == "Smith"
    joined = "Winners: Smith won the prize in 2015."
    assert reader.extract("Who won the prize?", [joined]).best.text == "Winners: Smith", "a colon is no paragraph break"


def test_confidence_rises_with_the_margin(reader):
    values = [reader.confidence(m) for m in (-10.0, -2.0, 0.0, 2.0, 10.0)]
    assert values == sorted(values) and 0 <= values[0] < values[-1] <= 1
    assert reader.confidence(-math.inf) == 0.0


def _copy_of_shipped(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_the_shipped_reader_has_weights_no_cpu_overflows():
    # 7-bit weights (qa.onnx_model.quantize_int8): a CPU without VNNI sums pairs of activation-weight
    # products in 16 bits, which full-range int8 weights overflow; its answers would then differ.
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(SHIPPED / "reader.onnx")).graph
    arrays = {i.name: i for i in graph.initializer}
    weights = [numpy_helper.to_array(arrays[n.input[1]]) for n in graph.node if n.op_type == "MatMulInteger"]
    assert weights and all(w.dtype == np.int8 and int(np.abs(w.astype(np.int16)).max()) <= 64 for w in weights)


def test_damaged_weights_are_refused_with_the_fix(tmp_path):
    folder = _copy_of_shipped(tmp_path)
    data = bytearray((folder / "reader.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "reader.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"damaged \(checksum mismatch\).*git checkout qa/reader/model"):
        Reader(folder).warm_up()


def test_missing_weights_are_refused_with_the_fix(tmp_path):
    folder = _copy_of_shipped(tmp_path)
    (folder / "reader.onnx").unlink()
    with pytest.raises(ModelError, match="missing.*git checkout"):
        Reader(folder).extract("Who?", ["Someone."])


def test_damaged_settings_are_refused_with_the_fix(tmp_path):
    folder = _copy_of_shipped(tmp_path)
    (folder / "reader.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="settings.*damaged.*git checkout"):
        Reader(folder)


def test_reader_settings_are_checked_at_construction():
    with pytest.raises(ValueError, match="batch must be"):
        Reader(batch=0)
    with pytest.raises(ValueError, match="max_answer_tokens must be"):
        Reader(max_answer_tokens=0)


def _tiny_squad(path: Path) -> Path:
    context = (
        "The Normans were a people of northern France. In 1066 William conquered England. "
        "The duchy of Normandy was founded in 911 by Rollo. Their language was Norman French."
    )

    def qa(n, question, answer):
        return {"id": f"tiny-{n}", "question": question, "is_impossible": answer is None,
                "answers": [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]}

    data = {"version": "v2.0", "data": [{"title": "Tiny", "paragraphs": [{"context": context, "qas": [
        qa(1, "When did William conquer England?", "1066"),
        qa(2, "Who founded Normandy?", "Rollo"),
        qa(3, "What was their language?", "Norman French"),
        qa(4, "Who conquered Spain?", None),
    ]}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.integration
def test_training_a_few_steps_resumes_and_exports_a_reader_that_loads(tmp_path, capsys):
    from qa.reader import export, train

    data = _tiny_squad(tmp_path / "tiny.json")
    out, checkpoint = tmp_path / "out", tmp_path / "checkpoint"
    common = [str(data), "--out", str(out), "--checkpoint", str(checkpoint), "--batch", "2", "--negatives", "1",
              "--checkpoint-every", "1", "--dev", str(data), "--threads", "1"]
    assert train.main(common + ["--max-steps", "2"]) == 0
    assert (out / "reader.safetensors").is_file()
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 2
    assert train.main(common + ["--max-steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "resumed from" in printed and "at step 2" in printed
    assert "dev after" in printed and "answerable_span_f1" in printed
    record = json.loads((out / "training.json").read_text())
    assert record["training"]["steps"] == 3 and record["training"]["seed"] == 13

    # It lists the questions it learned from (not the negatives made of them), and so does its export.
    from qa.reader import question_key, trained_on

    tiny = json.loads(data.read_text())["data"][0]["paragraphs"][0]
    asked = {question_key(q["question"], tiny["context"]) for q in tiny["qas"]}
    assert trained_on(out) == asked

    info = export.export(out, tmp_path / "model")
    assert info["weights"] == "int8" and info["sample_agreement"]["same_best_token"] > 0.5
    assert trained_on(tmp_path / "model") == asked
    trained = Reader(tmp_path / "model")
    reading = trained.extract("Who founded Normandy?", ["The duchy of Normandy was founded in 911 by Rollo."])
    assert reading.best is not None

    # The shipped int8 file gives back the trained weights, each within its quantization step.
    from safetensors.torch import load_file

    from qa.reader import network

    weights = {k: v.float() for k, v in load_file(str(out / "reader.safetensors")).items()}
    recovered = network.weights_from_onnx(tmp_path / "model" / "reader.onnx")
    assert set(weights) - set(recovered) <= {k for k in weights if k.startswith("encoder.pooler.")}
    for name, value in recovered.items():
        step = value.abs().max() / 100  # 7-bit weights: at most half of max/64 away, per column or per tensor
        assert value.shape == weights[name].shape and (value - weights[name]).abs().max() <= step, name

    # Training goes on from a shipped reader, and says what it went on from.
    other = tmp_path / "other.json"
    context = "Rollo was a Viking leader who became the first ruler of Normandy."
    other.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Rollo", "paragraphs": [{"context": context, "qas": [
        {"id": "other-1", "question": "Who was Rollo?", "answers": [{"text": "a Viking leader", "answer_start": 10}]}]}]}]}))
    again = [str(other), "--init", str(tmp_path / "model"), "--out", str(tmp_path / "out2"), "--checkpoint",
             str(tmp_path / "checkpoint2"), "--batch", "2", "--threads", "1", "--max-steps", "1"]
    assert train.main(again) == 0
    continued = json.loads((tmp_path / "out2" / "training.json").read_text())["training"]
    assert continued["steps"] == 1 and continued["continued_from"]["steps"] == 3
    assert trained_on(tmp_path / "out2") == asked | {question_key("Who was Rollo?", context)}  # with the earlier reader's


def test_training_refuses_a_missing_file(tmp_path, capsys):
    from qa.reader import train

    with pytest.raises(SystemExit):
        train.main([str(tmp_path / "nope.json"), "--out", str(tmp_path / "out")])
    assert "is not a file" in capsys.readouterr().err
    data = _tiny_squad(tmp_path / "tiny.json")
    with pytest.raises(SystemExit):
        train.main([str(data), "--out", str(tmp_path / "out"), "--init", str(tmp_path)])
    assert "holds no reader" in capsys.readouterr().err
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "reader.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(SystemExit, match="holds no reader this command can start from"):
        train.main([str(data), "--out", str(tmp_path / "out"), "--init", str(tmp_path / "damaged"), "--threads", "1"])


def test_generated_negatives_keep_the_topic_but_lose_the_answer():
    import random

    from qa.reader.train import Example, negative_of, with_negation, with_opposite, with_swapped_entity, without_answer_sentence

    context = "Rollo founded Normandy in 911. Later, William conquered England in 1066. Norman French was spoken."
    example = Example("Who conquered England in 1066?", context, context.index("William"), "William", "answer")
    padded = Example(example.question, context + " " * 80 + "Padding sentence here.", example.answer_start, "William", "answer")
    removed = without_answer_sentence(padded)
    assert removed is not None and "William" not in removed.context and removed.answer_start is None

    other = Example("Who?", "Paris lies on the Seine. Lyon lies on the Rhone in 1200.", 0, "Paris", "answer")
    elsewhere = with_swapped_entity(example, [example, other], random.Random(0), inside=False)
    changed = [w.strip("?") for w in elsewhere.question.split() if w.strip("?") not in example.question]
    assert changed and all(w not in context for w in changed), "a name or number the paragraph never mentions"

    inside = with_swapped_entity(example, [example], random.Random(0), inside=True)
    changed = [w.strip("?") for w in inside.question.split() if w.strip("?") not in example.question]
    answer_sentence = "Later, William conquered England in 1066."
    assert changed and all(w in context and w not in answer_sentence for w in changed), "named elsewhere in the paragraph"

    first = Example("Who was the first duke?", "Rollo was the first duke of Normandy.", 0, "Rollo", "answer")
    assert with_opposite(first).question == "Who was the last duke?"
    assert with_opposite(Example("Who was the first duke?", "Rollo was the first and the last duke.", 0, "Rollo", "answer")) is None
    assert with_negation(first).question == "Who was not the first duke?"
    for seed in range(20):
        made = negative_of(example, [example, other], random.Random(seed))
        assert made is not None and made.answer_start is None and made.kind != "answer"


def test_a_damaged_reader_is_one_line_on_the_command_line(tmp_path, small_corpus, fake_embedder, capsys):
    from ingest.sync import sync
    from qa.__main__ import main

    sync([small_corpus], tmp_path / "index", embedder=fake_embedder)
    folder = _copy_of_shipped(tmp_path)
    (folder / "reader.onnx").write_bytes(b"not a model")
    status = main(["ask", "Who began WordNet?", "--index", str(tmp_path / "index"), "--reader", str(folder)], embedder=fake_embedder)
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ") and "damaged" in err and "git checkout qa/reader/model" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
