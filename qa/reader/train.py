"""`python -m qa.reader.train FILE[:N] ... --out DIR`: fine-tune the bundled encoder into the reader.

SQuAD v2.0-format files in; a span head with a no-answer option ([CLS]) out. Abstention is
taught with negatives generated from the answerable questions, seeded, that keep the topic
(SQuAD 2.0's unanswerable questions are asked of the right paragraph): the paragraph with the
sentence holding the answer removed, or the question with one of its names or numbers swapped
for one the paragraph does not hold. The run checkpoints every few minutes and resumes where it
stopped when run again with the same arguments; the dev figure is printed after each epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qa.evaluate import auroc, f1_score
from qa.reader import TRAINED_ON, network, question_key, trained_on
from qa.reader.windows import Window, batch_arrays, best_spans, load_tokenizer, windows

MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class Example:
    question: str
    context: str
    answer_start: int | None  # None: unanswerable
    answer_text: str
    kind: str  # one of KINDS


KINDS = ("answer", "real-negative", "removed-sentence", "swapped-entity", "swapped-entity-inside", "opposite", "negation")


# --- data -----------------------------------------------------------------------------------------


def read_squad(path: Path) -> list[list[Example]]:
    """Articles of examples (one list per article, so negatives can borrow from the same article)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    articles = []
    for article in data["data"]:
        examples = []
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                if qa.get("is_impossible") or not answers:
                    examples.append(Example(qa["question"], context, None, "", "real-negative"))
                else:
                    a = answers[0]
                    examples.append(Example(qa["question"], context, int(a["answer_start"]), a["text"], "answer"))
        articles.append(examples)
    return articles


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def without_answer_sentence(example: Example) -> Example | None:
    """The same question asked of its paragraph with the answer's sentence removed, when the
    answer is then nowhere in it."""
    context, start = example.context, example.answer_start
    end = start + len(example.answer_text)
    cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(context)] + [len(context)]
    kept = [context[a:b] for a, b in zip(cuts, cuts[1:]) if b <= start or a >= end]
    rest = "".join(kept).strip()
    if len(rest) < 100 or example.answer_text.lower() in rest.lower():
        return None
    return Example(example.question, rest, None, "", "removed-sentence")


def _answer_sentence(example: Example) -> tuple[int, int]:
    """Where the sentence (or sentences) holding the answer begins and ends in the paragraph."""
    start, end = example.answer_start, example.answer_start + len(example.answer_text)
    cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(example.context)] + [len(example.context)]
    return max(c for c in cuts if c <= start), min(c for c in cuts if c >= end)


def with_swapped_entity(example: Example, article: list[Example], rng: random.Random, inside: bool) -> Example | None:
    """The question with one of its names or numbers, one the paragraph holds, replaced by one of
    the same kind the answer's sentence does not hold: taken from elsewhere in the paragraph
    (`inside`: the paragraph speaks of it, but not as the question asks, as SQuAD 2.0's entity
    swaps do), or from another paragraph of the article, when this one never mentions it."""
    question, context = example.question, example.context
    held = [m for m in [*_NAME.finditer(question), *_NUMBER.finditer(question)] if m.group() in context]
    if not held:
        return None
    target = rng.choice(held)
    pattern = _NUMBER if target.group()[0].isdigit() else _NAME
    first, last = _answer_sentence(example)
    answer_sentence = context[first:last]
    if inside:
        pool = {m.group() for m in pattern.finditer(context[:first] + " " + context[last:])}
        pool = [p for p in sorted(pool) if p not in answer_sentence and p.lower() not in question.lower()]
    else:
        pool = sorted({m.group() for other in article if other.context != context for m in pattern.finditer(other.context)})
        pool = [p for p in pool if p not in context and p.lower() not in question.lower()]
        if pattern is _NUMBER and not pool:
            value = target.group().replace(",", "")
            if value.isdigit():
                pool = [str(int(value) + d) for d in (-3, -2, -1, 1, 2, 3, 10) if str(int(value) + d) not in context]
    if not pool:
        return None
    swapped = question[: target.start()] + rng.choice(pool) + question[target.end() :]
    return Example(swapped, context, None, "", "swapped-entity-inside" if inside else "swapped-entity")


_OPPOSITES = dict(
    pair
    for a, b in [("first", "last"), ("before", "after"), ("increase", "decrease"), ("increased", "decreased"),
                 ("largest", "smallest"), ("most", "least"), ("earliest", "latest"), ("highest", "lowest"),
                 ("more", "less"), ("won", "lost"), ("win", "lose"), ("start", "end"), ("began", "ended"),
                 ("above", "below"), ("north", "south"), ("east", "west"), ("early", "late"), ("oldest", "newest"),
                 ("maximum", "minimum"), ("major", "minor"), ("positive", "negative"), ("higher", "lower"),
                 ("larger", "smaller"), ("longest", "shortest"), ("best", "worst"), ("inside", "outside"),
                 ("allowed", "forbidden"), ("accepted", "rejected"), ("supported", "opposed"), ("strong", "weak")]
    for pair in ((a, b), (b, a))
)


def with_opposite(example: Example) -> Example | None:
    """The question with a word turned into its opposite ("first" for "last", "after" for
    "before"), when the answer's sentence does not say the opposite."""
    first, last = _answer_sentence(example)
    sentence = example.context[first:last].lower()
    for match in re.finditer(r"[A-Za-z]+", example.question):
        opposite = _OPPOSITES.get(match.group().lower())
        if opposite and not re.search(rf"\b{opposite}\b", sentence):
            if match.group()[0].isupper():
                opposite = opposite.capitalize()
            question = example.question[: match.start()] + opposite + example.question[match.end() :]
            return Example(question, example.context, None, "", "opposite")
    return None


_NEGATABLE = re.compile(r"^(?:what|which|who|where|when)\s+(?:is|was|are|were)\s+(?=the\b|a\b|an\b)", re.IGNORECASE)


def with_negation(example: Example) -> Example | None:
    """ "What was the first ...?" asked as "What was not the first ...?", which the paragraph
    does not answer (it names what was)."""
    match = _NEGATABLE.match(example.question)
    if match is None:
        return None
    return Example(example.question[: match.end()] + "not " + example.question[match.end() :], example.context, None, "", "negation")


def negative_of(example: Example, article: list[Example], rng: random.Random) -> Example | None:
    """One generated negative of an answerable example: a kind drawn at random among those that apply."""
    makers = [
        lambda: with_swapped_entity(example, article, rng, inside=True),
        lambda: with_swapped_entity(example, article, rng, inside=False),
        lambda: with_opposite(example),
        lambda: with_negation(example),
        lambda: without_answer_sentence(example),
    ]
    rng.shuffle(makers)
    return next((made for made in (make() for make in makers) if made is not None), None)


def build_examples(specs: list[str], negatives: float, seed: int, real_repeats: int = 1) -> list[Example]:
    """The files' examples (`path:N` keeps a seeded N of a file) plus generated negatives, one
    for `negatives` of the answerable examples, shuffled; unanswerable ones `real_repeats` times."""
    rng = random.Random(seed)
    out: list[Example] = []
    for spec in specs:
        path, _, limit = spec.rpartition(":") if re.search(r":\d+$", spec) else (spec, "", "")
        articles = read_squad(Path(path))
        chosen = [(article, ex) for article in articles for ex in article]
        rng.shuffle(chosen)
        if limit:
            chosen = chosen[: int(limit)]
        for article, example in chosen:
            if example.answer_start is None:  # the real ones are few and the best teachers: repeated
                out.extend([example] * real_repeats)
                continue
            out.append(example)
            if rng.random() < negatives:
                made = negative_of(example, article, rng)
                if made is not None:
                    out.append(made)
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class Feature:
    window: Window
    start: int  # token positions of the answer, 0 ([CLS]) for none
    end: int


def features_of(tokenizer, example: Example, max_length: int, stride: int) -> list[Feature]:
    out = []
    for window in windows(tokenizer, example.question, [example.context], max_length, stride):
        start = end = 0
        if example.answer_start is not None:
            a, b = example.answer_start, example.answer_start + len(example.answer_text)
            inside = [i for i, o in enumerate(window.offsets) if o is not None and o[1] > a and o[0] < b]
            first = next(i for i, o in enumerate(window.offsets) if o is not None)
            last = max(i for i, o in enumerate(window.offsets) if o is not None)
            if inside and window.offsets[first][0] <= a and window.offsets[last][1] >= b:
                start, end = inside[0], inside[-1]
        out.append(Feature(window, start, end))
    return out


def batches(features: list[Feature], size: int, seed: int) -> list[list[int]]:
    """Batches of similar length (little padding), in a seeded order fixed for the whole run."""
    rng = random.Random(seed)
    order = list(range(len(features)))
    rng.shuffle(order)
    out = []
    chunk = size * 64
    for begin in range(0, len(order), chunk):
        group = sorted(order[begin : begin + chunk], key=lambda i: len(features[i].window.ids))
        out.extend(group[i : i + size] for i in range(0, len(group), size))
    rng.shuffle(out)
    return out


# --- the dev figure -------------------------------------------------------------------------------


def read_dev(path: Path) -> list[tuple[str, str, list[str]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        (qa["question"], paragraph["context"], [a["text"] for a in qa.get("answers") or []] if not qa.get("is_impossible") else [])
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


@torch.no_grad()
def predict(model, tokenizer, items: list[tuple[str, str]], max_length: int, stride: int, batch: int = 32) -> list[tuple[str, float]]:
    """For each (question, passage): the best span's text and its margin over no answer."""
    model.eval()
    all_windows = []
    for number, (question, passage) in enumerate(items):
        for w in windows(tokenizer, question, [passage], max_length, stride):
            all_windows.append((number, w))
    best: dict[int, tuple[float, str]] = {}
    nulls: dict[int, float] = {}
    for begin in range(0, len(all_windows), batch):
        part = all_windows[begin : begin + batch]
        inputs = {k: torch.from_numpy(v) for k, v in batch_arrays([w for _, w in part]).items()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            start, end = model(**inputs)
        start, end = start.float().numpy(), end.float().numpy()
        for row, (number, w) in enumerate(part):
            spans = best_spans(w, start[row], end[row], MAX_ANSWER_TOKENS)
            null = float(start[row, 0] + end[row, 0])
            nulls[number] = min(nulls.get(number, math.inf), null)
            if spans and spans[0].score > best.get(number, (-math.inf, ""))[0]:
                best[number] = (spans[0].score, items[number][1][spans[0].start : spans[0].end])
    model.train()
    return [(best.get(i, (0.0, ""))[1], best.get(i, (-math.inf, ""))[0] - nulls.get(i, 0.0)) for i in range(len(items))]


def dev_figures(model, tokenizer, dev, max_length: int, stride: int) -> dict:
    predictions = predict(model, tokenizer, [(q, c) for q, c, _ in dev], max_length, stride)
    answerable = [i for i, (_, _, golds) in enumerate(dev) if golds]
    span_f1 = [max(f1_score(predictions[i][0], g) for g in dev[i][2]) for i in answerable]
    margins = [m for _, m in predictions]
    labels = [bool(golds) for _, _, golds in dev]

    def f1_at(threshold: float) -> float:
        scores = []
        for (text, margin), (_, _, golds) in zip(predictions, dev):
            answer = text if margin > threshold else ""
            scores.append(max(f1_score(answer, g) for g in golds) if golds else float(answer == ""))
        return 100 * float(np.mean(scores))

    thresholds = sorted(set(np.quantile(margins, np.linspace(0, 1, 101)).tolist()))
    best_threshold = max(thresholds, key=f1_at)
    return {
        "answerable_span_f1": 100 * float(np.mean(span_f1)),
        "f1_at_0": f1_at(0.0),
        "f1_best": f1_at(best_threshold),
        "best_margin": best_threshold,
        "no_answer_auroc": auroc(margins, labels),
    }


# --- checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, run_key: str) -> None:
    from safetensors.torch import save_file

    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    network.save_weights(model, staging / "model.safetensors")
    moments, counts = {}, {}
    for number, (param, state) in enumerate((p, optimizer.state[p]) for g in optimizer.param_groups for p in g["params"]):
        if state:
            moments[f"{number}.exp_avg"] = state["exp_avg"].contiguous()
            moments[f"{number}.exp_avg_sq"] = state["exp_avg_sq"].contiguous()
            counts[str(number)] = float(state["step"])
    save_file(moments, str(staging / "optimizer.safetensors"))
    (staging / "state.json").write_text(
        json.dumps({"step": step, "run": run_key, "counts": counts, "scheduler": scheduler.state_dict()}), encoding="utf-8"
    )
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, model, optimizer, scheduler, run_key: str) -> int:
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if state["run"] != run_key:
        raise SystemExit(f"{folder} holds a checkpoint of another run (other files or settings): give another --checkpoint or delete it.")
    network.load_weights(model, folder / "model.safetensors")
    moments = load_file(str(folder / "optimizer.safetensors"))
    for number, param in enumerate(p for g in optimizer.param_groups for p in g["params"]):
        if str(number) in state["counts"]:
            optimizer.state[param] = {
                "step": torch.tensor(state["counts"][str(number)]),
                "exp_avg": moments[f"{number}.exp_avg"],
                "exp_avg_sq": moments[f"{number}.exp_avg_sq"],
            }
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


# --- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.reader.train", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="SQuAD v2.0-format training files; path:N keeps a seeded N questions of it")
    parser.add_argument("--out", type=Path, required=True, help="folder for the trained reader (reader.safetensors, reader.json)")
    parser.add_argument("--dev", type=Path, help="SQuAD v2.0 dev file: its F1 and no-answer AUROC are printed after each epoch")
    parser.add_argument("--init", type=Path, help="start from an earlier reader: a --out folder of this command, or a shipped one (qa/reader/model)")
    parser.add_argument("--checkpoint", type=Path, default=Path(".cache/reader-training"), help="checkpoint folder (resumed from)")
    parser.add_argument("--negatives", type=float, default=0.6, help="share of answerable examples given a generated negative")
    parser.add_argument("--real-repeats", type=int, default=4, help="times each real unanswerable question is seen an epoch")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.06, help="share of the steps with a rising learning rate")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (a short trial)")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--eval-every", type=int, help="also print the dev figures every this many steps")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    for spec in args.files:
        path = spec.rpartition(":")[0] if re.search(r":\d+$", spec) else spec
        if not Path(path).is_file():
            parser.error(f"{path} is not a file: give the paths of SQuAD v2.0 JSON files.")
    if args.init is not None and not any((args.init / name).is_file() for name in ("reader.safetensors", "reader.onnx")):
        parser.error(f"{args.init} holds no reader (reader.safetensors or reader.onnx): give a --out folder of this command or qa/reader/model.")
    if not 0 <= args.negatives <= 1:
        parser.error(f"--negatives must be between 0 and 1 (got {args.negatives})")

    from qa.embedder import bundled_model_path

    torch.set_num_threads(args.threads)
    model_dir = bundled_model_path()
    tokenizer = load_tokenizer(model_dir)
    examples = build_examples(args.files, args.negatives, args.seed, args.real_repeats)
    kinds = {k: sum(e.kind == k for e in examples) for k in KINDS}
    print(f"{len(examples):,} examples: " + ", ".join(f"{v:,} {k}" for k, v in kinds.items()), flush=True)
    features = [f for e in tqdm(examples, desc="windows", mininterval=5) for f in features_of(tokenizer, e, args.max_length, args.stride)]
    order = batches(features, args.batch, args.seed)
    per_epoch = len(order)
    total = per_epoch * args.epochs if args.max_steps is None else min(args.max_steps, per_epoch * args.epochs)
    print(f"{len(features):,} windows, {per_epoch:,} steps an epoch, {total:,} steps in all", flush=True)
    dev = read_dev(args.dev) if args.dev else None

    model = network.from_encoder(model_dir, args.seed)
    earlier = None
    if args.init is not None:
        try:
            network.load_initial(model, args.init)
        except Exception as exc:  # onnx and safetensors raise their own error types for a damaged or foreign file
            raise SystemExit(f"{args.init} holds no reader this command can start from ({type(exc).__name__}): "
                             "give a --out folder of this command or qa/reader/model.") from None
        earlier = next((json.loads((args.init / name).read_text(encoding="utf-8")).get("training") for name in ("training.json", "reader.json") if (args.init / name).is_file()), None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(args.warmup * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    run_key = json.dumps({k: str(v) for k, v in vars(args).items() if k not in ("out", "dev", "checkpoint", "checkpoint_every", "eval_every", "threads", "max_steps")}, sort_keys=True)
    step = 0
    if (args.checkpoint / "state.json").is_file():
        step = load_checkpoint(args.checkpoint, model, optimizer, scheduler, run_key)
        print(f"resumed from {args.checkpoint} at step {step:,}", flush=True)
    model.train()
    started, done_here = time.monotonic(), 0
    progress = tqdm(total=total, initial=step, desc="training", unit="step", mininterval=10)
    while step < total:
        epoch, position = divmod(step, per_epoch)
        batch = [features[i] for i in order[position]]
        inputs = {k: torch.from_numpy(v) for k, v in batch_arrays([f.window for f in batch]).items()}
        starts = torch.tensor([f.start for f in batch])
        ends = torch.tensor([f.end for f in batch])
        allowed = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
        for row, f in enumerate(batch):
            allowed[row, 0] = True
            allowed[row, [i for i, o in enumerate(f.window.offsets) if o is not None]] = True
        with torch.autocast("cpu", dtype=torch.bfloat16):
            start_logits, end_logits = model(**inputs)
        start_logits = start_logits.masked_fill(~allowed, -1e4)
        end_logits = end_logits.masked_fill(~allowed, -1e4)
        loss = (torch.nn.functional.cross_entropy(start_logits, starts) + torch.nn.functional.cross_entropy(end_logits, ends)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        done_here += len(batch)
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.3f}", windows_per_s=f"{done_here / (time.monotonic() - started):.1f}", refresh=False)
        if step % args.checkpoint_every == 0 or step == total:
            save_checkpoint(args.checkpoint, model, optimizer, scheduler, step, run_key)
        at_epoch_end = step % per_epoch == 0 or step == total
        if dev is not None and (at_epoch_end or (args.eval_every and step % args.eval_every == 0)):
            figures = dev_figures(model, tokenizer, dev, args.max_length, args.stride)
            label = f"epoch {epoch + 1}" if at_epoch_end else f"step {step:,}"
            tqdm.write(f"dev after {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items() if v is not None))
            sys.stdout.flush()
    progress.close()
    args.out.mkdir(parents=True, exist_ok=True)
    network.save_weights(model, args.out / "reader.safetensors", dtype=torch.float16)
    _write_trained_on(args.out, examples, args.init)
    record = {
        "base_model": "all-MiniLM-L6-v2",
        "max_length": args.max_length,
        "stride": args.stride,
        "max_answer_tokens": MAX_ANSWER_TOKENS,
        "training": {"files": [Path(s).name for s in args.files], "examples": kinds, "windows": len(features), "steps": total,
                     **{k: getattr(args, k) for k in ("epochs", "batch", "lr", "warmup", "negatives", "real_repeats", "seed")},
                     **({"continued_from": earlier} if earlier is not None else {})},
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'reader.safetensors'}", flush=True)
    return 0


def _write_trained_on(out: Path, examples: list[Example], init: Path | None) -> None:
    """The questions this reader learned from, with those of the reader it went on from, so that
    `qa eval --unseen` measures it on the others. Not written when the earlier reader's are unknown."""
    keys = {question_key(e.question, e.context) for e in examples if e.kind in ("answer", "real-negative")}
    if init is not None:
        earlier = trained_on(init)
        if earlier is None:
            (out / TRAINED_ON).unlink(missing_ok=True)
            print(f"{init} does not list the questions it was trained on, so neither does this reader ({TRAINED_ON})", flush=True)
            return
        keys |= earlier
    (out / TRAINED_ON).write_text("".join(f"{key}\n" for key in sorted(keys)), encoding="ascii")


if __name__ == "__main__":
    sys.exit(main())
