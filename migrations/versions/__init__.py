"""Alembic revision scripts (a package only so setuptools ships them)."""
