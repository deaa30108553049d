"""Storage: SQLAlchemy 2 tables, engines for SQLite (WAL) and PostgreSQL, and Alembic migrations."""
