"""Imports every module that defines tables, so that Base.metadata is complete for Alembic."""

from minsheng.storage import (
    clock_tables,  # noqa: F401
    kb_tables,  # noqa: F401
    models,  # noqa: F401
    triage_tables,  # noqa: F401
)
