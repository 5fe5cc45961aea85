"""Alembic migrations, shipped inside the package so `provenance db upgrade` works from a wheel.

Keep this file free of imports: Alembic loads env.py itself, by path.
"""
