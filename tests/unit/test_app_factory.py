"""The ASGI factory a deployment runs (``uvicorn --factory api.app:from_environment``)."""

from __future__ import annotations

import gc

from api.app import freeze_what_startup_built, from_environment


def test_the_served_app_freezes_what_its_startup_built(monkeypatch, tmp_path):
    monkeypatch.setenv("OSTINATO_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/api.db")
    app = from_environment()
    assert app.on_startup[-1] is freeze_what_startup_built


def test_freezing_leaves_the_objects_built_so_far_out_of_later_collections():
    try:
        freeze_what_startup_built()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
