"""Kind, urgency and transfer detection: values, confidences and the cues that explain them."""

from __future__ import annotations

import pytest

from minsheng.triage.signals import (
    Kind,
    Transfer,
    Urgency,
    detect,
    detect_kind,
    detect_transfer,
    detect_urgency,
)


@pytest.mark.parametrize(
    ("text", "kind", "cue"),
    [
        ("请问办理居住证需要什么材料？", Kind.consultation, "请问"),
        ("我要投诉楼下饭店噪音扰民，一直没有解决", Kind.complaint, "投诉"),
        ("举报有人在河边偷排污水", Kind.report, "举报"),
        ("建议在小区门口增设红绿灯", Kind.suggestion, "建议"),
        ("感谢社区工作人员，必须点赞", Kind.praise, "感谢"),
        ("求助：老人走失了，请帮帮我们", Kind.help, "求助"),
    ],
)
def test_kind_with_its_cue(text, kind, cue):
    result = detect_kind(text)
    assert result.value == kind
    assert cue in result.cues
    assert 0.0 < result.confidence < 1.0


def test_kind_without_cues_is_a_low_confidence_default():
    result = detect_kind("人民路")
    assert result.cues == []
    assert result.confidence < 0.5


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("楼下着火了，有人被困！", Urgency.emergency),
        ("厨房燃气泄漏，味道很大", Urgency.emergency),
        ("水管爆裂，请马上派人来", Urgency.urgent),
        ("小区绿化带杂草较多", Urgency.normal),
    ],
)
def test_urgency(text, urgency):
    result = detect_urgency(text)
    assert result.value == urgency
    if urgency is not Urgency.normal:
        assert result.cues


def test_emergency_is_more_certain_with_more_cues():
    one = detect_urgency("家里冒烟")
    many = detect_urgency("着火了，爆炸，有人受伤，被困")
    assert many.value == Urgency.emergency
    assert many.confidence >= one.confidence


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("有人在广场打架斗殴", Transfer.police),
        ("我被电话诈骗了三万元", Transfer.police),
        ("仓库着火了，冒烟很大", Transfer.fire),
        ("有位老人晕倒了需要急救", Transfer.medical),
        ("路口发生交通事故，两车追尾", Transfer.traffic),
    ],
)
def test_transfer_targets(text, target):
    result = detect_transfer(text)
    assert result.target == target
    assert result.cues
    assert result.candidates[0][0] == target
    assert str(target.value) in {"110", "119", "120", "122"}


def test_in_scope_request_is_not_transferred():
    result = detect_transfer("小区路灯坏了一个星期没人修")
    assert result.target is None
    assert result.confidence == 0.0


def test_negated_cue_does_not_count():
    assert detect_transfer("没有着火，只是邻居烧烤").target is None
    assert detect_urgency("没有着火").value == Urgency.normal


def test_several_services_are_all_candidates():
    result = detect_transfer("发生车祸，司机昏迷不省人事，需要救护车")
    targets = {t for t, _ in result.candidates}
    assert {Transfer.traffic, Transfer.medical} <= targets


@pytest.mark.parametrize("text", ["", "😀😀", "!!!???", None, "x" * 100_000, "Help 着火 ПОЖАР 🔥"])
def test_bad_input_never_raises(text):
    signals = detect(text)
    assert isinstance(signals.kind.value, Kind)
    assert isinstance(signals.urgency.value, Urgency)
