"""Alembic migrations of the protection service database."""
