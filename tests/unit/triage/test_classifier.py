"""Behaviour of the category classifier: round trip, threshold, explanations, bad input, persistence errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minsheng.triage.classifier import (
    META_FILE,
    MODEL_FILE,
    ModelLoadError,
    Prediction,
    TextClassifier,
    choose_threshold,
    evaluate,
    load_model,
    save_model,
    train_classifier,
)

EVAL_KEYS = {
    "accuracy",
    "macro_f1",
    "per_class",
    "auto_threshold",
    "auto_coverage",
    "auto_precision",
    "texts_per_second",
    "n",
}


def test_learns_the_synthetic_topics(model, make_corpus):
    texts, labels = make_corpus(15, seed=99)
    result = evaluate(model, texts, labels)
    assert result.keys() >= EVAL_KEYS
    assert result["n"] == len(texts)
    assert result["accuracy"] >= 0.9
    assert set(result["per_class"]) == set(labels)
    for figures in result["per_class"].values():
        assert {"precision", "recall", "f1", "support"} <= figures.keys()
    assert result["texts_per_second"] > 0


def test_prediction_shape_and_probabilities(model):
    (pred,) = model.predict(["人民路的路灯坏了好几天，晚上一片漆黑"])
    assert isinstance(pred, Prediction)
    assert pred.label == "城乡建设"
    assert pred.label in model.labels
    assert len(pred.top) == 3
    assert pred.top[0] == (pred.label, pred.confidence)
    confidences = [c for _, c in pred.top]
    assert confidences == sorted(confidences, reverse=True)
    proba = model.predict_proba(["人民路的路灯坏了"])
    assert proba.shape == (1, len(model.labels))
    assert np.isclose(proba.sum(), 1.0)


def test_metadata_describes_training(model, corpus):
    meta = model.metadata
    assert meta["n_train"] == len(corpus[0])
    assert meta["labels"] == sorted(set(corpus[1]))
    assert meta["threshold"] == model.threshold
    assert {"accuracy", "macro_f1", "auto_coverage", "auto_precision"} <= meta["metrics"].keys()
    assert {"trained_at", "version"} <= meta.keys()


def test_threshold_separates_auto_dispatch_from_queue(model):
    clear, vague = model.predict(["阳光小区的井盖坏了没人管，请尽快维修", "你好"])
    assert clear.confidence > vague.confidence
    assert model.is_confident(clear) == (clear.confidence >= model.threshold)
    assert not model.is_confident(vague)


def test_choose_threshold_meets_target_precision():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 2000)
    correct = rng.uniform(size=2000) < confidence  # more confident, more often right
    threshold, coverage, precision = choose_threshold(confidence, correct, 0.9)
    chosen = confidence >= threshold
    assert precision == pytest.approx(correct[chosen].mean())
    assert precision >= 0.9
    assert coverage == pytest.approx(chosen.mean())
    lower = confidence >= threshold - 0.05
    assert correct[lower].mean() < 0.9 + 0.02  # a clearly lower threshold would not be as safe


def test_unreachable_target_dispatches_nothing():
    confidence = np.linspace(0.5, 1.0, 100)
    correct = np.zeros(100, dtype=bool)
    threshold, coverage, _ = choose_threshold(confidence, correct, 0.97)
    assert threshold > 1.0
    assert coverage == 0.0


def test_explanation_names_the_words_that_decided(model):
    text = "西山社区幼儿园招生收费太高"
    explanation = model.explain(text)
    assert explanation, "a clear text should have contributing features"
    weights = [w for _, w in explanation]
    assert weights == sorted(weights, reverse=True)
    assert all(w > 0 for w in weights)
    names = "".join(name.lstrip("^") for name, _ in explanation)
    assert any(ch in names for ch in "幼儿园招生")
    with pytest.raises(ValueError):
        model.explain(text, label="不存在的分类")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😡🙏🏻👍", "！！！？？？。。。……", "\x00\x01\u200b\ufeff", None],
    ids=["empty", "spaces", "emoji", "punctuation", "control", "none"],
)
def test_uninformative_text_gets_low_confidence(model, text):
    (pred,) = model.predict([text])
    assert pred.label in model.labels
    assert pred.confidence <= 1.0 / len(model.labels) + 1e-9
    assert not model.is_confident(pred)
    assert model.explain(text) == []


def test_huge_and_mixed_script_text_never_raises(model):
    huge = "小区路灯坏了" * 20_000  # 120,000 characters
    mixed = "The 路灯 on 人民路 is broken 😡 ПРИВЕТ مرحبا 12345 ａｂｃ"
    preds = model.predict([huge, mixed, 12345])  # type: ignore[list-item]
    assert len(preds) == 3
    assert all(0.0 <= p.confidence <= 1.0 for p in preds)
    assert preds[0].label == "城乡建设"
    assert isinstance(model.explain(huge), list)


def test_save_load_round_trip(model, tmp_path):
    directory = save_model(model, tmp_path / "m")
    assert (directory / MODEL_FILE).is_file()
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    assert meta["labels"] == model.labels
    loaded = load_model(directory)
    assert isinstance(loaded, TextClassifier)
    texts = ["学校补课乱收费", "公交车绕路", "医院挂号难", "😀"]
    assert loaded.predict(texts) == model.predict(texts)
    assert loaded.threshold == model.threshold


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_missing_model_file_is_a_clear_error(model, tmp_path):
    directory = save_model(model, tmp_path / "m")
    (directory / MODEL_FILE).unlink()
    with pytest.raises(ModelLoadError, match=MODEL_FILE):
        load_model(directory)


def test_corrupt_model_file_is_a_clear_error(model, tmp_path):
    directory = save_model(model, tmp_path / "m")
    (directory / MODEL_FILE).write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(directory)
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    meta.pop("sha256")
    (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="could not be read"):
        load_model(directory)


def test_corrupt_meta_is_a_clear_error(model, tmp_path):
    directory = save_model(model, tmp_path / "m")
    (directory / META_FILE).write_text("{broken", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(directory)
    assert issubclass(ModelLoadError, ValueError)


def test_training_refuses_unusable_input():
    with pytest.raises(ValueError):
        train_classifier(["a", "b"], ["x"])
    with pytest.raises(ValueError):
        train_classifier(["一", "二", "三"], ["x", "x", "x"])


def test_rare_category_still_trains(make_corpus):
    texts, labels = make_corpus(12, seed=3)
    texts, labels = [*texts, "图书馆开放时间调整"], [*labels, "稀有分类"]
    model = train_classifier(texts, labels, n_jobs=1)
    assert "稀有分类" in model.labels
    assert len(model.predict(["图书馆开放时间"])) == 1


def test_nothing_heavy_at_import_time():
    import subprocess
    import sys

    code = "import sys, minsheng.triage.classifier, minsheng.triage.signals; print('jieba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_text_alone_scores_as_in_a_batch() -> None:
    # Intake classifies one text at a time through a path without sparse matrices: it must agree with the batch.
    texts, labels = _generated_for_single_path()
    model = train_classifier(texts[:300], labels[:300], target_precision=0.9, folds=3, seed=0)
    probe = [*texts[300:], "", "😀😀！！", "ABC abc 123", "a" * 5000, texts[0] * 40, "未见过的字词组合"]
    batch = model.predict_proba(probe)
    alone = np.vstack([model.predict_proba([t]) for t in probe])
    assert np.abs(batch - alone).max() < 1e-5
    assert [p.label for p in model.predict(probe)] == [model.predict([t])[0].label for t in probe]
    emoji = probe.index("😀😀！！")
    assert np.allclose(alone[emoji], 1.0 / len(model.labels))  # emoji and punctuation only: no evidence
    assert np.allclose(alone[emoji - 1], 1.0 / len(model.labels))  # empty


def _generated_for_single_path() -> tuple[list[str], list[str]]:
    import random

    from minsheng.demo.city import generate_city
    from minsheng.demo.texts import generate_request

    city = generate_city(2026)
    rng = random.Random(5)
    cats = [c.code for c in city.categories if len(c.code) == 4][:6]
    streets = [a.code for a in city.areas if a.level == "street"]
    texts, labels = [], []
    for i in range(360):
        cat = cats[i % len(cats)]
        r = generate_request(rng, city, cat, rng.choice(streets))
        texts.append(f"{r.title}\n{r.detail}")
        labels.append(cat)
    return texts, labels
