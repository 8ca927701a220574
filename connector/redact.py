"""Keeping secrets and personal data out of logs and error messages."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-])[A-Za-z0-9.\-]*(\.[A-Za-z]{2,})")


def mask_email(email: str | None) -> str:
    """``colby45@example.com`` -> ``c***@e***.com``: enough to recognise, not to harvest."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    head, dot, tld = domain.rpartition(".")
    domain_masked = f"{(head or domain)[:1]}***{dot}{tld}" if dot else f"{domain[:1]}***"
    return f"{local[:1]}***@{domain_masked}"


def mask_emails_in(text: str) -> str:
    """Mask every email address inside free text (CRM error bodies quote them)."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", text)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask emails and replace every known secret value in ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return mask_emails_in(text)
