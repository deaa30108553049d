"""Roles of the people (and machines) that act on tickets, and who an actor is."""

from __future__ import annotations

from dataclasses import dataclass

from minsheng.domain.states import LabelledEnum


class Role(LabelledEnum):
    OPERATOR = "operator"
    DISPATCHER = "dispatcher"
    HANDLER = "handler"
    SUPERVISOR = "supervisor"
    FOLLOWUP = "followup"
    LEADER = "leader"
    ADMIN = "admin"
    CITIZEN = "citizen"
    SYSTEM = "system"
    INTEGRATION = "integration"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.OPERATOR: "话务员",
    Role.DISPATCHER: "派单员",
    Role.HANDLER: "承办人员",
    Role.SUPERVISOR: "督办员",
    Role.FOLLOWUP: "回访员",
    Role.LEADER: "领导",
    Role.ADMIN: "系统管理员",
    Role.CITIZEN: "群众",
    Role.SYSTEM: "系统",
    Role.INTEGRATION: "对接系统",
}

STAFF_ROLES = frozenset(
    {Role.OPERATOR, Role.DISPATCHER, Role.HANDLER, Role.SUPERVISOR, Role.FOLLOWUP, Role.LEADER, Role.ADMIN}
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a step: a user with a role, scoped to a unit, or the system itself."""

    role: Role
    user_id: int | None = None
    unit_id: int | None = None
    name: str = ""

    @classmethod
    def system(cls, name: str = "系统") -> Actor:
        return cls(role=Role.SYSTEM, name=name)

    @classmethod
    def citizen(cls) -> Actor:
        return cls(role=Role.CITIZEN, name="群众")
