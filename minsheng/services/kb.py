"""The knowledge base: answers and service-catalogue entries, with full-text search that works for Chinese.

Chinese has no spaces, so every entry keeps its jieba tokens joined by spaces in `kb_entries.tokens`; SQLite
indexes them in an FTS5 virtual table (`kb_fts`, rowid = entry id) and PostgreSQL in a GIN index over
`to_tsvector('simple', tokens)`. Alembic's autogenerate knows neither, so `ensure_fts` creates them
idempotently at start-up and before the first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from minsheng.services.errors import NotFound
from minsheng.services.schemas import Strict
from minsheng.storage import dialect
from minsheng.storage.kb_tables import KbEntry
from minsheng.storage.models import Category

KINDS = {"answer": "答复口径", "service": "服务事项"}
_WORD = re.compile(r"\w", re.UNICODE)
_STOP = frozenset(
    {"的", "了", "吗", "呢", "吧", "啊", "我", "你", "他", "是", "在", "有", "和", "与", "及", "或"}
    | {"请问", "怎么", "怎么办", "什么", "如何", "哪里", "可以", "需要", "一下"}
)
_ready: set[str] = set()
_ready_lock = threading.Lock()


class KbIn(Strict):
    kind: str = Field(default="answer", pattern=r"^(answer|service)$")
    title: str = Field(min_length=2, max_length=200)
    body: str = Field(min_length=2, max_length=20_000)
    category_code: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=100)
    keywords: str | None = Field(default=None, max_length=300)
    public: bool = True


def tokens(*texts: str | None) -> list[str]:
    """jieba search-mode tokens (words and sub-words), lower-cased, without punctuation or stop words."""
    import jieba  # loaded on first use: its dictionary takes a second to read

    out: list[str] = []
    for t in texts:
        if not t:
            continue
        for tok in jieba.lcut_for_search(t.lower()):
            tok = tok.strip()
            if tok and _WORD.search(tok) and tok not in _STOP:
                out.append(tok)
    return out


def ensure_fts(session: Session) -> None:
    """Create the full-text index for this database if it is missing (safe to call on every use)."""
    bind = session.get_bind()
    key = f"{bind.engine.url}@{id(bind.engine)}"
    if key in _ready:
        return
    with _ready_lock:
        if dialect.is_sqlite(session):
            session.execute(text("CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(tokens)"))
        else:
            session.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_kb_entries_fts ON kb_entries "
                    "USING gin (to_tsvector('simple', tokens))"
                )
            )
        _ready.add(key)


def _index(session: Session, e: KbEntry) -> None:
    e.tokens = " ".join(tokens(e.title, e.keywords, e.department, e.body))
    session.flush()
    if dialect.is_sqlite(session):
        ensure_fts(session)
        session.execute(text("DELETE FROM kb_fts WHERE rowid = :id"), {"id": e.id})
        session.execute(
            text("INSERT INTO kb_fts(rowid, tokens) VALUES (:id, :t)"), {"id": e.id, "t": e.tokens}
        )


def _category_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    cid = session.scalar(select(Category.id).where(Category.code == code))
    if cid is None:
        raise NotFound(f"unknown category '{code}'", field="category_code")
    return cid


def create(session: Session, data: KbIn, now: datetime) -> KbEntry:
    e = KbEntry(
        kind=data.kind,
        title=data.title,
        body=data.body,
        category_id=_category_id(session, data.category_code),
        department=data.department,
        keywords=data.keywords,
        public=data.public,
        active=True,
        tokens="",
        created_at=now,
        updated_at=now,
    )
    session.add(e)
    _index(session, e)
    return e


def update(session: Session, entry_id: int, data: KbIn, now: datetime) -> KbEntry:
    e = get(session, entry_id)
    e.kind, e.title, e.body = data.kind, data.title, data.body
    e.category_id = _category_id(session, data.category_code)
    e.department, e.keywords, e.public = data.department, data.keywords, data.public
    e.updated_at = now
    _index(session, e)
    return e


def delete(session: Session, entry_id: int) -> None:
    e = get(session, entry_id)
    if dialect.is_sqlite(session):
        ensure_fts(session)
        session.execute(text("DELETE FROM kb_fts WHERE rowid = :id"), {"id": e.id})
    session.delete(e)


def get(session: Session, entry_id: int) -> KbEntry:
    e = session.get(KbEntry, entry_id)
    if e is None:
        raise NotFound(f"knowledge-base entry {entry_id} not found")
    return e


def latest(session: Session, *, public_only: bool = False, limit: int = 50) -> list[KbEntry]:
    q = select(KbEntry).where(KbEntry.active.is_(True))
    if public_only:
        q = q.where(KbEntry.public.is_(True))
    return list(session.scalars(q.order_by(KbEntry.updated_at.desc(), KbEntry.id.desc()).limit(limit)))


def search(session: Session, query: str, *, public_only: bool = False, limit: int = 10) -> list[KbEntry]:
    """Entries matching any of the query's words, best first (BM25 on SQLite, ts_rank on PostgreSQL)."""
    words = list(dict.fromkeys(w for w in tokens(query) if re.fullmatch(r"\w+", w)))[:20]
    if not words:
        return []
    ensure_fts(session)
    ids: Sequence[Any]
    if dialect.is_sqlite(session):
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        ids = (
            session.execute(
                text("SELECT rowid FROM kb_fts WHERE kb_fts MATCH :m ORDER BY bm25(kb_fts) LIMIT :n"),
                {"m": match, "n": limit * 3},
            )
            .scalars()
            .all()
        )
    else:
        ids = (
            session.execute(
                text(
                    "SELECT id FROM kb_entries "
                    "WHERE to_tsvector('simple', tokens) @@ to_tsquery('simple', :q) "
                    "ORDER BY ts_rank(to_tsvector('simple', tokens), to_tsquery('simple', :q)) DESC, id "
                    "LIMIT :n"
                ),
                {"q": " | ".join(words), "n": limit * 3},
            )
            .scalars()
            .all()
        )
    if not ids:
        return []
    rows = {e.id: e for e in session.scalars(select(KbEntry).where(KbEntry.id.in_(list(ids))))}
    out = [rows[i] for i in ids if i in rows and rows[i].active and (rows[i].public or not public_only)]
    return out[:limit]


def reindex(session: Session) -> int:
    """Rebuild the tokens and the index of every entry (after a bulk load that bypassed `create`)."""
    n = 0
    for e in session.scalars(select(KbEntry)):
        _index(session, e)
        n += 1
    return n
