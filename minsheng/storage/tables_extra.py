"""Imports every module that defines tables, so that Base.metadata is complete for Alembic."""

from minsheng.storage import (
    audit_tables,  # noqa: F401
    channel_tables,  # noqa: F401
    config_tables,  # noqa: F401
    import_tables,  # noqa: F401
    kb_tables,  # noqa: F401
    limit_tables,  # noqa: F401
    measure_tables,  # noqa: F401
    models,  # noqa: F401
    open311_tables,  # noqa: F401
    partner_tables,  # noqa: F401
    supervision_tables,  # noqa: F401
    timelimit_tables,  # noqa: F401
    triage_tables,  # noqa: F401
)
