"""One ``store`` fixture for the whole store suite, parametrised over the backends.

``store()`` makes a new, not yet opened handle on this test's own storage: call it again
to reopen the same data. A backend joins the suite with one factory and one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from connector.store import Store, open_store

NewStore = Callable[[], Store]


def sqlite_store(tmp_path: Path) -> NewStore:
    return lambda: open_store("sqlite:///t.db", tmp_path)


BACKENDS: dict[str, Callable[[Path], NewStore]] = {"sqlite": sqlite_store}


@pytest.fixture(params=[*sorted(BACKENDS), "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> NewStore:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")  # tests/conftest.py: skips without a server
        return lambda: open_store(url, tmp_path)
    return BACKENDS[request.param](tmp_path)
