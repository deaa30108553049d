"""Model directories and retraining the classifier from the database's closed tickets."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import TicketState
from minsheng.services.errors import Conflict, Invalid
from minsheng.storage.db import Database
from minsheng.storage.models import Category, Ticket

if TYPE_CHECKING:
    from minsheng.services.triage.runtime import TriageRuntime

CURRENT_FILE = "CURRENT"
TRAINING_FILE = "training.json"


def resolve_model_path(model_dir: Path) -> Path:
    """The model directory to load: the version named in ``CURRENT`` when there is one, else the dir itself."""
    pointer = Path(model_dir) / CURRENT_FILE
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            return Path(model_dir) / "versions" / name
    return Path(model_dir)


def read_training_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(path) / TRAINING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def training_data(
    session: Session, level: int = 3, *, limit: int | None = None
) -> tuple[list[str], list[str]]:
    """(texts, labels) of closed tickets with a category: title + detail → category code at ``level``."""
    if level not in (1, 2, 3):
        raise Invalid("level must be 1, 2 or 3")
    closed = (TicketState.CLOSED.value, TicketState.RATED.value)
    q = (
        select(Ticket.title, Ticket.detail, Category.path)
        .join(Category, Category.id == Ticket.category_id)
        .where(Ticket.state.in_(closed))
        .order_by(Ticket.id)
    )
    if limit:
        q = q.limit(limit)
    texts: list[str] = []
    labels: list[str] = []
    for title, detail, path in session.execute(q.execution_options(yield_per=5000)):
        parts = [p for p in path.split("/") if p]
        if len(parts) < level:
            continue  # a ticket categorised only above the wanted level teaches nothing at that level
        texts.append("\n".join(x for x in (title, detail) if x))
        labels.append(parts[level - 1])
    return texts, labels


def train_from_db(
    db: Database,
    out_dir: Path,
    level: int = 3,
    *,
    now: datetime | None = None,
    min_examples: int = 20,
    limit: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train the classifier on the database's closed tickets (at most ``limit``) and save it into ``out_dir``.

    Returns the training record (also written to ``out_dir/training.json``). Raises Invalid when there are
    fewer than ``min_examples`` usable tickets or fewer than two categories.
    """
    from minsheng.triage import classifier as clf

    with db.read_sessions() as session:
        texts, labels = training_data(session, level, limit=limit)
    if len(texts) < min_examples or len(set(labels)) < 2:
        raise Invalid(
            f"not enough closed, categorised tickets to train on: {len(texts)} tickets in "
            f"{len(set(labels))} categories (need {min_examples} in at least 2)"
        )
    started = time.perf_counter()
    model = clf.train_classifier(texts, labels, **options)
    seconds = time.perf_counter() - started
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clf.save_model(model, out_dir)
    record = {
        "version": out_dir.name,
        "trained_at": now.isoformat() if now else None,
        "source": "database",
        "level": level,
        "tickets": len(texts),
        "classes": len(set(labels)),
        "train_seconds": round(seconds, 2),
        "threshold": getattr(model, "threshold", None),
        "metrics": model_metrics(model),
    }
    (out_dir / TRAINING_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return record


def model_metrics(model: Any) -> dict[str, Any]:
    meta = getattr(model, "metadata", None)
    if isinstance(meta, dict) and isinstance(meta.get("metrics"), dict):
        return dict(meta["metrics"])
    for attr in ("metrics", "metadata", "meta"):
        value = getattr(model, attr, None)
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if isinstance(v, int | float | str | bool) or v is None}
    return {}


def retrain(runtime: TriageRuntime, now: datetime, level: int | None = None) -> dict[str, Any]:
    """Train a new version from the database, save it under ``model_dir/versions/`` and swap it in."""
    model_dir = runtime.settings.model_dir
    if model_dir is None:
        raise Invalid("no model directory configured (set MINSHENG_MODEL_DIR)")
    version = now.strftime("v%Y%m%d%H%M%S")
    target = Path(model_dir) / "versions" / version
    record = train_from_db(runtime.db, target, level or runtime.config.model_level, now=now)
    pointer = Path(model_dir) / CURRENT_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version, encoding="utf-8")
    tmp.replace(
        pointer
    )  # atomic: another process reading CURRENT sees the old or the new version, never half
    if not runtime.load_model(target):
        raise Conflict(f"the new model was saved but cannot be loaded: {runtime.model_error}")
    return record
