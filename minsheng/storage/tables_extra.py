"""Imports every module that defines tables, so that Base.metadata is complete for Alembic."""

from minsheng.storage import models  # noqa: F401
