"""What ``plan`` and ``check`` say about lifecycle events and mappings by key.

``plan`` reads no store, so an email change is described against the event's own
before-state; the store acts on the email it knows (see :mod:`connector.store.lifecycle`).
"""

from __future__ import annotations

from typing import Any

from connector.config import Config
from connector.mappings import Destination, MappingSet
from connector.plain.changes import ParsedEvent, load_json
from connector.store import StoreUnavailable, open_store, sqlite_path


def plan_lines(event: ParsedEvent, body: bytes, config: Config, mappings: MappingSet) -> list[str]:
    """One line per target or destination an email change, deletion or group change acts on."""
    if event.kind == "customer_updated" and event.customer is not None:
        return _email_lines(event, _previous_email(body), config)
    if event.kind == "customer_deleted" and event.customer is not None:
        who = event.customer.email or event.customer.id
        policy = mappings.policy
        return [
            f"  {name}: customer deleted: "
            + (
                f"remove {who} from every group synced here"
                if policy.customer_deleted(name) == "remove"
                else f"keep {who}'s groups as they are (on_customer_deleted: keep)"
            )
            for name in config.targets
        ]
    if event.kind == "group_changed" and event.group is not None:
        return _group_lines(event, mappings)
    return []


def _email_lines(event: ParsedEvent, previous: str | None, config: Config) -> list[str]:
    assert event.customer is not None
    new = event.customer.email
    if new is None:
        return ["  customer updated without an email: the known email stays"]
    if previous is None or previous.strip().casefold() == new.strip().casefold():
        return [f"  email {new} as before: nothing to do unless the store knows another email for the customer"]
    lines = []
    for name, target in config.targets.items():
        if target.config.on_email_change == "move":
            lines.append(f"  {name}: email change: remove synced groups from {previous}, add them to {new}")
        else:
            lines.append(f"  {name}: email change: leave {previous} as it is, add synced groups to {new}")
    return lines


def _group_lines(event: ParsedEvent, mappings: MappingSet) -> list[str]:
    group = event.group
    assert group is not None
    label = group.key or group.id
    dests = mappings.destinations(group.id, group.key)
    if not event.group_deleted:
        follows = "mappings written by its id or an earlier key keep matching it"
        return [f"  group {group.id} is now key {group.key!r}, name {group.name!r}: {follows}"]
    if not dests:
        return [f"  group {label} deleted: no mapping by its id or key (a mapping by an earlier key may still act)"]
    return [f"  {d.target}: group {label} deleted: {_deleted_action(d)}" for d in dests]


def _deleted_action(dest: Destination) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in dest.options.items()) or "-"
    if dest.on_group_deleted == "remove":
        return f"remove every member ({opts})"
    return f"keep members as they are ({opts}; on_group_deleted: keep)"


def _previous_email(body: bytes) -> str | None:
    try:
        data: Any = load_json(body)
        email = data["payload"]["previousCustomer"]["email"]["email"]
    except (ValueError, KeyError, TypeError):
        return None
    return email if isinstance(email, str) and email.strip() else None


async def stale_key_warnings(config: Config, mappings: MappingSet) -> list[str]:
    """Mappings written by a key that no known group has any more, but one had."""
    url = config.store_url
    if url.startswith("sqlite:///") and not sqlite_path(url, config.base_dir).exists():
        return []  # nothing received yet, and `check` must not create the store
    store = open_store(url, config.base_dir)
    try:
        await store.open()
        known = await store.group_keys()
    except StoreUnavailable as exc:
        return [f"cannot read the store to check mapping keys: {exc}"]
    finally:
        await store.close()
    current = {k.current_key for k in known if k.current_key}
    warnings = []
    for k in known:
        dests = mappings.by_group.get(k.key)
        if not dests or k.key in current:
            continue
        now = "deleted" if k.deleted else f"now keyed {k.current_key!r}"
        warnings.append(
            f"{dests[0].source}: group key {k.key!r} is no longer any known group's key (group {k.group_id} had it,"
            f" {now}); the mapping keeps following {k.group_id}: write its id or new key to say so"
        )
    return warnings
