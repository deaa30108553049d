"""Knowledge-base pages: search for every member of staff, create/edit/delete for admins."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from minsheng.domain.roles import Role
from minsheng.http.common import SmallIdPath
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import kb, org
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.services.schemas import MAX_SMALL_ID
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
StaffUser = Annotated[Principal, core.need(core.STAFF)]
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]
# ASCII digits only: "²".isdigit() is true and int("²") fails.
ENTRY_ID = re.compile(r"[0-9]{1,10}")


def _entry_id(value: str | None) -> int | None:
    """The entry id sent in a URL or a form, or None when it is not one (or more than its column holds)."""
    value = (value or "").strip()
    return int(value) if ENTRY_ID.fullmatch(value) and 0 < int(value) <= MAX_SMALL_ID else None


def _entry(e: Any, cats: dict[int, str]) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "kind_label": kb.KINDS.get(e.kind, e.kind),
        "title": e.title,
        "body": e.body,
        "department": e.department,
        "keywords": e.keywords,
        "public": e.public,
        "category": cats.get(e.category_id or 0),
        "updated_at": e.updated_at,
    }


def _page(request: Request, state: Any, user: Principal, **extra: Any) -> Response:
    q = (request.query_params.get("q") or "").strip()[:100]
    with core.read_tx(state) as session:
        rows = kb.search(session, q, limit=30) if q else kb.latest(session, limit=50)
        cats = org.category_names(session, {e.category_id for e in rows if e.category_id})
        ctx: dict[str, Any] = {
            "items": [_entry(e, cats) for e in rows],
            "q": q,
            "kinds": kb.KINDS,
            "categories": org.category_options(session) if user.role is Role.ADMIN else [],
        }
        edit_id = _entry_id(request.query_params.get("edit"))
        if edit_id is not None and user.role is Role.ADMIN and "values" not in extra:
            e = kb.get(session, edit_id)
            code = org.category_code(session, e.category_id) if e.category_id else ""
            ctx["values"] = {
                "kind": e.kind,
                "title": e.title,
                "body": e.body,
                "department": e.department or "",
                "keywords": e.keywords or "",
                "category_code": code,
                "public": "1" if e.public else "",
            }
            ctx["edit_id"] = e.id
    ctx.update(extra)
    status = int(ctx.pop("status", 200))
    return core.render(request, "kb.html", ctx, user=user, status=status)


@router.get("/kb")
def kb_page(request: Request, state: StateDep, user: StaffUser) -> Response:
    return _page(request, state, user)


def _data(form: core.Form) -> kb.KbIn:
    return kb.KbIn.model_validate(
        {
            "kind": form.get("kind") or "answer",
            "title": form.get("title"),
            "body": form.get("body"),
            "category_code": form.opt("category_code"),
            "department": form.opt("department"),
            "keywords": form.opt("keywords"),
            "public": form.flag("public"),
        }
    )


@router.post("/kb")
def kb_save(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    entry_id = form.get("id").strip()
    if entry_id and _entry_id(entry_id) is None:
        errs = {"_form": "条目编号无效：请从列表中重新打开要修改的条目"}
        return _page(request, state, user, errors=errs, values=form.values(), status=422)
    try:
        data = _data(form)
        with core.write_tx(state, user) as session:
            if entry_id:
                kb.update(session, int(entry_id), data, state.clock.now())
            else:
                kb.create(session, data, state.clock.now())
    except ValidationError as e:
        errs = core.field_errors(e)
        return _page(request, state, user, errors=errs, values=form.values(), edit_id=entry_id, status=422)
    except ServiceError as e:
        errs = {str(e.detail.get("field") or "_form"): core.service_message(e)}
        return _page(request, state, user, errors=errs, values=form.values(), edit_id=entry_id, status=422)
    return core.redirect("/kb", msg="已保存知识条目")


@router.post("/kb/{entry_id}/delete")
def kb_delete(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, entry_id: SmallIdPath
) -> Response:
    with core.write_tx(state, user) as session:
        kb.delete(session, entry_id)
    return core.redirect("/kb", msg="已删除知识条目")
