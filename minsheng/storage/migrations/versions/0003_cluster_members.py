"""cluster warning members one row each, and every key a cluster is known by

The member list of a cluster warning was a JSON array rewritten whole each time a ticket joined: in a flood of
thousands of calls that is quadratic, and two processes adding members at once could lose one's. Members move
to their own table (existing warnings keep theirs), with a count on the warning.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 22:26:02.300131
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_warnings = sa.table(
    'cluster_warnings',
    sa.column('id', sa.Integer()),
    sa.column('key', sa.String()),
    sa.column('member_numbers', sa.JSON()),
    sa.column('member_count', sa.Integer()),
)
_members = sa.table('cluster_warning_members', sa.column('cluster_id', sa.Integer()), sa.column('ticket_number', sa.String()))
_keys = sa.table('cluster_warning_keys', sa.column('key', sa.String()), sa.column('cluster_id', sa.Integer()))


def upgrade() -> None:
    op.create_table('cluster_warning_keys',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster_warnings.id'], name=op.f('fk_cluster_warning_keys_cluster_id_cluster_warnings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_cluster_warning_keys'))
    )
    with op.batch_alter_table('cluster_warning_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cluster_warning_keys_cluster_id'), ['cluster_id'], unique=False)

    op.create_table('cluster_warning_members',
    sa.Column('cluster_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ticket_number', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster_warnings.id'], name=op.f('fk_cluster_warning_members_cluster_id_cluster_warnings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cluster_id', 'ticket_number', name=op.f('pk_cluster_warning_members'))
    )
    with op.batch_alter_table('cluster_warning_members', schema=None) as batch_op:
        batch_op.create_index('ix_cluster_warning_members_number', ['ticket_number'], unique=False)

    bind = op.get_bind()
    stored = bind.execute(sa.select(_warnings.c.id, _warnings.c.key, _warnings.c.member_numbers)).all()
    # SQLite rebuilds the table to drop a column, and dropping the old copy would cascade to member rows
    # already written: the members are written after.
    with op.batch_alter_table('cluster_warnings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('member_numbers')
    with op.batch_alter_table('cluster_warnings', schema=None) as batch_op:
        batch_op.alter_column('member_count', server_default=None)

    for cid, key, numbers in stored:
        numbers = sorted(set(numbers or []))
        if numbers:
            bind.execute(_members.insert(), [{'cluster_id': cid, 'ticket_number': n} for n in numbers])
        bind.execute(_keys.insert().values(key=key, cluster_id=cid))
        bind.execute(_warnings.update().where(_warnings.c.id == cid).values(member_count=len(numbers)))


def downgrade() -> None:
    with op.batch_alter_table('cluster_warnings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_numbers', sa.JSON(), nullable=False, server_default='[]'))

    bind = op.get_bind()
    members: dict[int, list[str]] = {}
    for cid, number in bind.execute(sa.select(_members.c.cluster_id, _members.c.ticket_number).order_by(_members.c.ticket_number)).all():
        members.setdefault(cid, []).append(number)
    for cid, numbers in members.items():
        bind.execute(_warnings.update().where(_warnings.c.id == cid).values(member_numbers=numbers))

    with op.batch_alter_table('cluster_warnings', schema=None) as batch_op:
        batch_op.alter_column('member_numbers', server_default=None)
        batch_op.drop_column('member_count')

    with op.batch_alter_table('cluster_warning_members', schema=None) as batch_op:
        batch_op.drop_index('ix_cluster_warning_members_number')

    op.drop_table('cluster_warning_members')
    with op.batch_alter_table('cluster_warning_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cluster_warning_keys_cluster_id'))

    op.drop_table('cluster_warning_keys')
