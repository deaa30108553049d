"""Named states and value sets of the trade, with their Chinese labels and colours in one place."""

from __future__ import annotations

from enum import StrEnum


class LabelledEnum(StrEnum):
    """A string enum whose members carry a Chinese label (zh-CN UI) and a colour."""

    # Keyed by (type, value): StrEnum members of different enums with the same value compare equal.
    @property
    def label(self) -> str:
        return _LABELS.get((type(self), self.value), self.value)

    @property
    def colour(self) -> str:
        return _COLOURS.get((type(self), self.value), "grey")

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]


class TicketState(LabelledEnum):
    ACCEPTED = "accepted"  # 已受理, waiting for triage / dispatch
    DISPATCHED = "dispatched"  # 已派单, waiting for the lead unit to sign
    RETURNED = "returned"  # 已退回, every unit sent it back: dispatcher must redispatch
    IN_PROGRESS = "in_progress"  # 办理中
    PAUSED = "paused"  # 已挂起
    CLOSE_REQUESTED = "close_requested"  # 待审核
    CLOSED = "closed"  # 已办结
    RATED = "rated"  # 已回访评价
    TRANSFERRED = "transferred"  # 已转办 (110/119/120/122 …)
    MERGED = "merged"  # 已合并 / 重复件


class AssignmentState(LabelledEnum):
    PENDING = "pending"  # 待签收
    SIGNED = "signed"  # 办理中
    REPORTED = "reported"  # 已反馈
    CLOSE_REQUESTED = "close_requested"  # 申请结案
    CLOSED = "closed"  # 已办结
    RETURNED = "returned"  # 已退回
    CANCELLED = "cancelled"  # 已撤回 (redispatched elsewhere)


class AssignmentRole(LabelledEnum):
    LEAD = "lead"
    ASSIST = "assist"


class ExtensionState(LabelledEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class Channel(LabelledEnum):
    PHONE = "phone"
    SMS = "sms"
    WECHAT = "wechat"
    WEIBO = "weibo"
    APP = "app"
    WEB = "web"
    MAILBOX = "mailbox"
    GRID = "grid"
    VIDEO = "video"
    OPEN311 = "open311"
    TRANSFER_110 = "transfer_110"
    EMAIL = "email"
    PARTNER = "partner"  # a peer hotline's transfer (12315, 12333 …; 110's is TRANSFER_110)


class Kind(LabelledEnum):
    CONSULTATION = "consultation"
    HELP = "help"
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"
    PRAISE = "praise"


class Urgency(LabelledEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class Rating(LabelledEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    BASICALLY_DISSATISFIED = "basically_dissatisfied"
    DISSATISFIED = "dissatisfied"

    @property
    def is_dissatisfied(self) -> bool:
        return self in (Rating.BASICALLY_DISSATISFIED, Rating.DISSATISFIED)


class TransferTarget(LabelledEnum):
    POLICE = "110"
    FIRE = "119"
    MEDICAL = "120"
    TRAFFIC = "122"
    OTHER = "other"


class AreaLevel(LabelledEnum):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"

    @property
    def depth(self) -> int:
        return list(AreaLevel).index(self)


class UnitKind(LabelledEnum):
    CENTRE = "centre"
    DEPARTMENT = "department"
    DISTRICT_OFFICE = "district_office"
    STREET_OFFICE = "street_office"
    COMMUNITY = "community"
    GRID_TEAM = "grid_team"
    RESPONSE_TEAM = "response_team"
    EXTERNAL = "external"


OPEN_TICKET_STATES = frozenset(
    {
        TicketState.ACCEPTED,
        TicketState.DISPATCHED,
        TicketState.RETURNED,
        TicketState.IN_PROGRESS,
        TicketState.PAUSED,
        TicketState.CLOSE_REQUESTED,
    }
)
# Closed for the citizen; follow-up and reopen may still act on CLOSED.
DONE_TICKET_STATES = frozenset({TicketState.CLOSED, TicketState.RATED})
TERMINAL_TICKET_STATES = frozenset({TicketState.RATED, TicketState.TRANSFERRED, TicketState.MERGED})
WAITING_DISPATCH_STATES = frozenset({TicketState.ACCEPTED, TicketState.RETURNED})
ACTIVE_ASSIGNMENT_STATES = frozenset(
    {
        AssignmentState.PENDING,
        AssignmentState.SIGNED,
        AssignmentState.REPORTED,
        AssignmentState.CLOSE_REQUESTED,
    }
)

_LABEL_LIST: list[tuple[StrEnum, str]] = [
    (TicketState.ACCEPTED, "待派单"),
    (TicketState.DISPATCHED, "待签收"),
    (TicketState.RETURNED, "已退回"),
    (TicketState.IN_PROGRESS, "办理中"),
    (TicketState.PAUSED, "已挂起"),
    (TicketState.CLOSE_REQUESTED, "待审核"),
    (TicketState.CLOSED, "已办结"),
    (TicketState.RATED, "已评价"),
    (TicketState.TRANSFERRED, "已转办"),
    (TicketState.MERGED, "已合并"),
    (AssignmentState.PENDING, "待签收"),
    (AssignmentState.SIGNED, "办理中"),
    (AssignmentState.REPORTED, "已反馈"),
    (AssignmentState.CLOSE_REQUESTED, "申请结案"),
    (AssignmentState.CLOSED, "已办结"),
    (AssignmentState.RETURNED, "已退回"),
    (AssignmentState.CANCELLED, "已撤回"),
    (AssignmentRole.LEAD, "主办"),
    (AssignmentRole.ASSIST, "协办"),
    (ExtensionState.PENDING, "待审批"),
    (ExtensionState.APPROVED, "已批准"),
    (ExtensionState.REFUSED, "已驳回"),
    (Channel.PHONE, "电话"),
    (Channel.SMS, "短信"),
    (Channel.WECHAT, "微信"),
    (Channel.WEIBO, "微博"),
    (Channel.APP, "APP"),
    (Channel.WEB, "网站"),
    (Channel.MAILBOX, "领导信箱"),
    (Channel.GRID, "网格上报"),
    (Channel.VIDEO, "视频监控"),
    (Channel.OPEN311, "Open311"),
    (Channel.TRANSFER_110, "110转办"),
    (Channel.EMAIL, "电子邮件"),
    (Channel.PARTNER, "联动转办"),
    (Kind.CONSULTATION, "咨询"),
    (Kind.HELP, "求助"),
    (Kind.COMPLAINT, "投诉"),
    (Kind.REPORT, "举报"),
    (Kind.SUGGESTION, "建议"),
    (Kind.PRAISE, "表扬"),
    (Urgency.NORMAL, "一般"),
    (Urgency.URGENT, "紧急"),
    (Urgency.EMERGENCY, "特急"),
    (Rating.SATISFIED, "满意"),
    (Rating.BASICALLY_SATISFIED, "基本满意"),
    (Rating.BASICALLY_DISSATISFIED, "基本不满意"),
    (Rating.DISSATISFIED, "不满意"),
    (TransferTarget.POLICE, "110 公安"),
    (TransferTarget.FIRE, "119 消防"),
    (TransferTarget.MEDICAL, "120 急救"),
    (TransferTarget.TRAFFIC, "122 交警"),
    (TransferTarget.OTHER, "其他系统"),
    (AreaLevel.CITY, "市"),
    (AreaLevel.DISTRICT, "区县"),
    (AreaLevel.STREET, "街道乡镇"),
    (AreaLevel.COMMUNITY, "社区村"),
    (AreaLevel.GRID, "网格"),
    (UnitKind.CENTRE, "热线中心"),
    (UnitKind.DEPARTMENT, "职能部门"),
    (UnitKind.DISTRICT_OFFICE, "区县政府"),
    (UnitKind.STREET_OFFICE, "街道乡镇"),
    (UnitKind.COMMUNITY, "社区村"),
    (UnitKind.GRID_TEAM, "网格"),
    (UnitKind.RESPONSE_TEAM, "应急队伍"),
    (UnitKind.EXTERNAL, "外部系统"),
]

_COLOUR_LIST: list[tuple[StrEnum, str]] = [
    (TicketState.ACCEPTED, "blue"),
    (TicketState.DISPATCHED, "cyan"),
    (TicketState.RETURNED, "orange"),
    (TicketState.IN_PROGRESS, "indigo"),
    (TicketState.PAUSED, "grey"),
    (TicketState.CLOSE_REQUESTED, "purple"),
    (TicketState.CLOSED, "green"),
    (TicketState.RATED, "teal"),
    (TicketState.TRANSFERRED, "grey"),
    (TicketState.MERGED, "grey"),
    (Urgency.URGENT, "orange"),
    (Urgency.EMERGENCY, "red"),
]

_LABELS: dict[tuple[type, str], str] = {(type(k), k.value): v for k, v in _LABEL_LIST}
_COLOURS: dict[tuple[type, str], str] = {(type(k), k.value): v for k, v in _COLOUR_LIST}
