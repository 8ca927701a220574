"""Text JSON allows but databases refuse (a lone surrogate, NUL) is stored by every backend.

What comes back out is what CRMs get anyway: the surrogate as U+FFFD, NUL removed.
"""

from __future__ import annotations

import json

from connector.plain.changes import parse_event
from connector.testing.plain import membership_event
from connector.text import crm_text

from tests.odd_text import SURROGATE_NUL
from tests.store.conftest import NewStore
from tests.store.events import accept, claim, run


def test_a_name_with_a_lone_surrogate_and_nul_is_stored_and_sent_in_crm_form(store: NewStore) -> None:
    group = ("cg_odd", "odd", SURROGATE_NUL)
    body = membership_event(
        event_id="pEv_odd", customer_id="c_odd", email="odd@example.com", groups_before=[], groups_after=[group],
        timestamp="2026-01-01T00:00:01Z", generation="versioned", full_name=SURROGATE_NUL,
    )  # fmt: skip

    async def scenario() -> tuple[str, list[tuple[str | None, str | None]]]:
        s = store()
        await s.open()
        # json escapes the lone surrogate (\ud83d), as Plain sends it
        result = await accept(s, parse_event(json.dumps(body).encode()))
        changes = [i.to_change() for i in await claim(s)]
        await s.close()
        return result.status, [(c.full_name, c.group_name) for c in changes]

    status, sent = run(scenario())
    assert status == "stored"
    assert sent == [(crm_text(SURROGATE_NUL), crm_text(SURROGATE_NUL))] == [("\ufffd xy", "\ufffd xy")]
