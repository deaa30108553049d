"""Fixtures for the classifier tests: a small synthetic Chinese corpus generated here, never copied data."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

_TOPICS = {
    "城乡建设": (
        ["路灯", "井盖", "道路破损", "小区电梯", "违章搭建", "自来水停水"],
        ["维修", "修复", "坏了", "没人管"],
    ),
    "教育文体": (["学校", "幼儿园", "学位", "老师", "补课", "图书馆"], ["收费", "入学", "招生", "体罚"]),
    "卫生计生": (["医院", "医生", "诊所", "疫苗", "药店", "医保报销"], ["看病", "挂号", "处方", "收费"]),
    "交通运输": (["公交车", "出租车", "地铁", "驾校", "网约车", "客运站"], ["线路", "拒载", "绕路", "班次"]),
}
_FILLER = ["请有关部门尽快处理", "希望领导重视", "已经反映多次", "市民非常不满", "谢谢", "影响生活"]
_PLACES = ["A市", "A3区", "阳光小区", "人民路", "东湖街道", "西山社区"]


def make_corpus(n_per_label: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, (subjects, verbs) in _TOPICS.items():
        for _ in range(n_per_label):
            subject = rng.choice(subjects)
            text = (
                f"{rng.choice(_PLACES)}{subject}{rng.choice(verbs)}问题"
                f"{rng.choice(_PLACES)}的{subject}{rng.choice(verbs)}，{rng.choice(_FILLER)}。"
            )
            texts.append(text)
            labels.append(label)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


@pytest.fixture(name="make_corpus", scope="session")
def make_corpus_fixture():
    return make_corpus


@pytest.fixture(scope="session")
def corpus() -> tuple[list[str], list[str]]:
    return make_corpus(40, seed=1)


@pytest.fixture(scope="session")
def model(corpus):
    from minsheng.triage.classifier import train_classifier

    texts, labels = corpus
    return train_classifier(texts, labels, target_precision=0.95, seed=0, n_jobs=1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data absent: {path}")
    return path
