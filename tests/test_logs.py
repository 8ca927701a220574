"""Logs never carry secrets, and emails in them are masked."""

from __future__ import annotations

import json
import logging

import pytest
from connector.logs import setup_logging
from connector.redact import mask_email, mask_emails_in


def test_secrets_and_emails_are_scrubbed_from_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(json_format=True, level="INFO", secrets=["pat-na1-SECRET-TOKEN"])
    log = logging.getLogger("connector.test")
    log.info("calling CRM with Bearer %s for %s", "pat-na1-SECRET-TOKEN", "colby45@example.com")
    try:
        raise RuntimeError("401 for token pat-na1-SECRET-TOKEN and ann.lee@corp.example.org")
    except RuntimeError:
        log.exception("request failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    text = json.dumps(lines)
    assert "SECRET-TOKEN" not in text and "colby45@example.com" not in text and "ann.lee@" not in text
    assert lines[0]["msg"] == "calling CRM with Bearer *** for c***@e***.com"
    assert lines[1]["level"] == "error" and "RuntimeError: 401 for token ***" in lines[1]["exc"]
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize(
    "email, masked",
    [("colby45@example.com", "c***@e***.com"), ("a@b.co.uk", "a***@b***.uk"), ("", ""), ("no-at-sign", "***")],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_mask_emails_in_free_text() -> None:
    assert mask_emails_in("member x.y+tag@sub.example.com exists") == "member x***@s***.com exists"
