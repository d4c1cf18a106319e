"""Alembic environment and versions: the one way any Ostinato database schema is created.

Use :mod:`migrations.runner` (or ``ostinato migrate``); no ``alembic.ini`` is
needed in the working directory. ``migrations/alembic.ini`` is there for the
``alembic`` command (``alembic -c migrations/alembic.ini revision …``).
"""
