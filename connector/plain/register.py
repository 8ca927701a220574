"""``plain register / unregister / targets``: the service's webhook target in Plain.

Registering is idempotent by URL: a target that already has the URL is updated to the
event types and version below (so re-running after an upgrade fixes its subscriptions);
otherwise one is created. The signing secret cannot be read through the API, so the
operator's one step left is to copy it from Plain's settings into ``PLAIN_SIGNING_SECRET``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from connector.config import Config
from connector.plain import events as ev
from connector.plain.api import PlainApi
from connector.plain.errors import NoCommonWebhookVersion, PlainApiError, PlainUsageError
from connector.plain.queries import WebhookTarget, WebhookVersion

__all__ = ["EVENT_TYPES", "SPOKEN_VERSIONS", "choose_version", "register", "run", "unregister"]

#: Webhook versions whose bodies :mod:`connector.plain.events` parses, newest first: the
#: versions of the JSON Schemas in tests/plain/schemas, which the parser is tested against.
SPOKEN_VERSIONS = ("2026-04-21", "2026-02-27", "2025-08-06", "2024-09-18")

#: What the service acts on (docs/architecture.md, "Facts we design for"); everything else would only be acknowledged.
EVENT_TYPES = (ev.MEMBERSHIPS_CHANGED, ev.CUSTOMER_UPDATED, ev.CUSTOMER_DELETED, ev.GROUP_CHANGED)

DESCRIPTION = "plain-crm-sync: customer group memberships to CRMs"
EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class Registration:
    target: WebhookTarget
    created: bool


def choose_version(offered: Sequence[WebhookVersion]) -> str:
    """The newest version we speak among those Plain offers and has not deprecated."""
    usable = {v.version for v in offered if not v.is_deprecated}
    for version in SPOKEN_VERSIONS:
        if version in usable:
            return version
    names = ", ".join(sorted(v.version for v in offered)) or "none"
    raise NoCommonWebhookVersion(
        f"Plain offers webhook versions {names}; this service parses {', '.join(SPOKEN_VERSIONS)}: upgrade plain-crm-sync"
    )


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise PlainUsageError(
            f"--url must be the service's public http(s) address, e.g. https://host/webhooks/plain, not {url!r}"
        )
    return url


async def register(api: PlainApi, url: str) -> Registration:
    """Create the target for ``url``, or bring the existing one up to date."""
    version = choose_version(await api.webhook_versions())
    existing = [t for t in await api.webhook_targets() if t.url == url]
    if existing:
        target = await api.update_webhook_target(
            existing[0].id, event_types=EVENT_TYPES, version=version, description=DESCRIPTION
        )
        return Registration(target, created=False)
    target = await api.create_webhook_target(url, EVENT_TYPES, version, DESCRIPTION)
    return Registration(target, created=True)


async def unregister(api: PlainApi, url: str) -> list[WebhookTarget]:
    """Delete every target with ``url``; return what was deleted."""
    doomed = [t for t in await api.webhook_targets() if t.url == url]
    for target in doomed:
        await api.delete_webhook_target(target.id)
    return doomed


def render_targets(targets: Sequence[WebhookTarget]) -> str:
    if not targets:
        return "no webhook targets"
    lines = [f"{'id':<36} {'version':<10} {'enabled':<7} url / events"]
    for t in targets:
        lines.append(f"{t.id:<36} {t.version:<10} {'yes' if t.is_enabled else 'no':<7} {t.url}")
        lines.append(f"{'':<56}{', '.join(t.event_types) or '(no events)'}")
    return "\n".join(lines)


def run(config: Config, action: str, url: str | None) -> int:
    """The CLI's ``plain <action>``: prints the outcome, returns the exit status."""
    if config.plain.api_key is None or not config.plain.api_key.get_secret_value():
        print(f"error: {config.path}: plain.api_key is not set (e.g. api_key: ${{PLAIN_API_KEY}})", file=sys.stderr)
        return EXIT_FAILED
    try:
        print(asyncio.run(_act(config, action, url)))
    except PlainApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _act(config: Config, action: str, url: str | None) -> str:
    if action != "targets":
        url = check_url(url or "")
    key = config.plain.api_key.get_secret_value() if config.plain.api_key else ""
    async with PlainApi(key, config.plain.api_url) as api:
        if action == "targets":
            return render_targets(await api.webhook_targets())
        assert url is not None
        if action == "unregister":
            gone = await unregister(api, url)
            if not gone:
                return f"no webhook target has the URL {url}: nothing to delete"
            return "\n".join(f"deleted webhook target {t.id} ({t.url})" for t in gone)
        done = await register(api, url)
        target = done.target
        return (
            f"{'created' if done.created else 'updated'} webhook target {target.id} for {target.url}\n"
            f"  version {target.version}; events: {', '.join(target.event_types)}\n"
            "one step left: copy the webhook signing secret from Plain (Settings > Webhooks) into "
            "PLAIN_SIGNING_SECRET (plain.signing_secret) where serve runs, and restart serve"
        )
