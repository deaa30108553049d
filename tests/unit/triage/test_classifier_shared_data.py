"""A quick check on the real TipDM 2020 C messages (skipped when ../shared/data is absent)."""

from __future__ import annotations

import csv
import random

from minsheng.triage.classifier import evaluate, train_classifier


def test_learns_real_categories_from_raw_joined_text(shared_data):
    path = shared_data / "taidi2020c" / "messages_labeled_segmented.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(0).shuffle(rows)
    # Joined tokens: the classifier must cope with raw, unsegmented text.
    texts = ["".join(r["text"].split()) for r in rows[:1800]]
    labels = [r["label"] for r in rows[:1800]]
    model = train_classifier(texts[:1200], labels[:1200], folds=3)
    result = evaluate(model, texts[1200:], labels[1200:])
    # Full-size figures are measured by bench/classify.py; this only guards against a broken pipeline.
    assert result["macro_f1"] > 0.8
    assert result["auto_precision"] > 0.9
