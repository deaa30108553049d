"""Benchmark of the ticket category classifier on the TipDM 2020 C corpus (../shared/data/taidi2020c).

Split: stratified 80/20 with ``sklearn.model_selection.train_test_split(random_state=0)`` over the 6,138
first-level-labelled messages. The publisher segmented the text with spaces; the tokens are joined with no space
so both models see raw-like text. Our model and a baseline (TF-IDF character 1-2-grams + LinearSVC) are trained
and tested in the same run on the same split, once on the whole training part and once on 2,000 messages drawn
from it (stratified, seed 0). Throughput is measured with one thread.

    .venv/bin/python bench/classify.py [--quick]

``--quick`` uses 1,500 training messages and 500 test messages for a smoke run.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from common import SHARED_DATA, print_table, single_thread, skip, write_results

DATA = SHARED_DATA / "taidi2020c" / "messages_labeled_segmented.csv"


def _load() -> tuple[list[str], list[str]]:
    with DATA.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return ["".join(r["text"].split()) for r in rows], [r["label"].strip() for r in rows]


def _ours(train_x: list[str], train_y: list[str], test_x: list[str], test_y: list[str]) -> dict[str, Any]:
    from minsheng.triage.classifier import evaluate, train_classifier

    started = time.perf_counter()
    model = train_classifier(train_x, train_y, target_precision=0.97, seed=0)
    train_seconds = time.perf_counter() - started
    with single_thread():
        model.predict(test_x[:50])  # warm-up, so the figure is steady-state throughput
        result = evaluate(model, test_x, test_y)
    result["train_seconds"] = train_seconds
    result["cv_metrics"] = model.metadata["metrics"]
    return result


def _baseline(train_x: list[str], train_y: list[str], test_x: list[str], test_y: list[str]) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    started = time.perf_counter()
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True), LinearSVC(C=1.0)
    ).fit(train_x, train_y)
    train_seconds = time.perf_counter() - started
    with single_thread():
        started = time.perf_counter()
        predicted = model.predict(test_x)
        seconds = time.perf_counter() - started
    return {
        "n": len(test_y),
        "accuracy": float(accuracy_score(test_y, predicted)),
        "macro_f1": float(f1_score(test_y, predicted, average="macro")),
        "auto_threshold": None,
        "auto_coverage": None,
        "auto_precision": None,
        "texts_per_second": len(test_x) / seconds,
        "train_seconds": train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    if not DATA.is_file():
        skip(f"data absent: {DATA} not found")

    from sklearn.model_selection import train_test_split

    texts, labels = _load()
    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=0.2, stratify=labels, random_state=0
    )
    if args.quick:
        train_x, _, train_y, _ = train_test_split(
            train_x, train_y, train_size=1500, stratify=train_y, random_state=0
        )
        test_x, _, test_y, _ = train_test_split(
            test_x, test_y, train_size=500, stratify=test_y, random_state=0
        )
    small_x, small_y = train_x, train_y
    if len(train_x) > 2000:
        small_x, _, small_y, _ = train_test_split(
            train_x, train_y, train_size=2000, stratify=train_y, random_state=0
        )

    runs: dict[str, dict[str, Any]] = {}
    for size_name, (tx, ty) in {"full": (train_x, train_y), "2000": (small_x, small_y)}.items():
        print(f"training on {len(tx)} messages ({size_name}), testing on {len(test_x)}…", flush=True)
        runs[f"ours/{size_name}"] = {"n_train": len(tx), **_ours(tx, ty, test_x, test_y)}
        runs[f"baseline/{size_name}"] = {"n_train": len(tx), **_baseline(tx, ty, test_x, test_y)}

    columns = ["model", "n_train", "macro-F1", "accuracy", "threshold", "coverage", "auto precision"]
    columns += ["train s", "texts/s (1 core)"]
    rows = []
    for name, r in runs.items():
        rows.append(
            [
                name,
                r["n_train"],
                r["macro_f1"],
                r["accuracy"],
                "-" if r["auto_threshold"] is None else r["auto_threshold"],
                "-" if r["auto_coverage"] is None else r["auto_coverage"],
                "-" if r["auto_precision"] is None else r["auto_precision"],
                f"{r['train_seconds']:.1f}",
                int(r["texts_per_second"]),
            ]
        )
    print_table(f"taidi2020c first-level categories, test n={len(test_y)}", columns, rows)
    path = write_results(
        "classify" + ("_quick" if args.quick else ""),
        {
            "data": str(DATA),
            "split": "stratified 80/20, sklearn train_test_split(random_state=0); 2000-message subset: "
            "stratified train_size=2000 of the training part, random_state=0; segmented tokens joined",
            "quick": args.quick,
            "targets": {
                "macro_f1": 0.94,
                "auto_precision": 0.97,
                "auto_coverage": 0.75,
                "texts_per_second": 2000,
            },
            "runs": runs,
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
