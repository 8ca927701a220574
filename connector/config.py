"""The service config file (README: config reference): parsed, env-expanded, validated with file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from connector import yamlfile
from connector.adapters import (
    Adapter,
    TargetConfig,
    UnknownTargetType,  # noqa: F401  (re-exported for callers)
    adapter_class,
)
from connector.plain.api import DEFAULT_API_URL
from connector.yamlfile import Located, YamlError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlainSection(_Section):
    signing_secret: SecretStr = Field(min_length=1)
    replay_tolerance_seconds: float = Field(300, gt=0)
    max_body_bytes: int = Field(1_048_576, gt=0)
    #: a body that trickles in slower than this is refused (slow-body attacks hold sockets)
    body_timeout_seconds: float = Field(10.0, gt=0)
    #: Plain's GraphQL API, for backfill, reconcile and `plain register` (not needed to serve)
    api_key: SecretStr | None = None
    api_url: str = DEFAULT_API_URL


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: protects /status* and /metrics; without one they answer loopback clients only
    admin_token: SecretStr | None = None


class StoreSection(_Section):
    url: str = "sqlite:///data/connector.db"


class DeliverySection(_Section):
    """How the runner retries; defaults spread about 20 attempts over roughly a day."""

    max_attempts: int = Field(20, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    lease_seconds: float = Field(120.0, gt=0)
    poll_interval_seconds: float = Field(0.5, gt=0)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: Any) -> float:
    """``90s``, ``30m``, ``24h``, ``1d`` or a number of seconds -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    try:
        return float(text[:-1]) * _UNITS[text[-1]] if text and text[-1] in _UNITS else float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration such as 90s, 30m, 24h or 1d") from None


class ReconcileSection(_Section):
    """``reconcile: {every: 24h}``: serve re-reads the mapped groups from Plain's API (off unless set)."""

    every: float | None = None

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        if value is None:
            return None
        seconds = duration_seconds(value)
        if seconds <= 0:
            raise ValueError("must be a positive duration such as 90s, 30m or 24h")
        return seconds


class RetentionSection(_Section):
    """How long kept rows live; fractions of a day are fine (a soak test uses minutes)."""

    #: event ids for deduplication: longer than Plain's 5-day retry span
    inbox_days: float = Field(14.0, gt=0)
    #: the attempt history (``history``, the status page), operator actions included
    history_days: float = Field(7.0, gt=0)
    #: dead letters nobody replayed or discarded (None: until an operator does)
    dead_letter_days: float | None = Field(None, gt=0)
    #: signed bodies we could not parse, kept for ``reprocess`` (None: until reprocessed)
    unprocessable_days: float | None = Field(None, gt=0)
    #: rows per delete: small, so the writer is never held for long
    prune_batch: int = Field(500, ge=1)
    prune_interval_seconds: float = Field(60.0, gt=0)


class LoggingSection(_Section):
    json_format: bool = Field(False, alias="json")
    level: str = "INFO"


class _ConfigModel(_Section):
    plain: PlainSection
    server: ServerSection = ServerSection()
    store: StoreSection = StoreSection()
    mappings: str = "mappings/"
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    delivery: DeliverySection = DeliverySection()
    logging: LoggingSection = LoggingSection()
    reconcile: ReconcileSection = ReconcileSection()
    retention: RetentionSection = RetentionSection()


class Target:
    """A configured target: its name, adapter class and validated config."""

    def __init__(self, name: str, cls: type[Adapter], config: TargetConfig) -> None:
        self.name = name
        self.adapter_class = cls
        self.config = config

    def create(self) -> Adapter:
        return self.adapter_class(self.name, self.config)


class Config:
    """The loaded config. Paths are already resolved against the config file's folder."""

    def __init__(self, path: Path, model: _ConfigModel, targets: dict[str, Target]) -> None:
        self.path = path
        self.base_dir = path.parent
        self.plain = model.plain
        self.server = model.server
        self.store_url = model.store.url
        self.mappings_path = (self.base_dir / model.mappings).resolve()
        self.targets = targets
        self.delivery = model.delivery
        self.logging = model.logging
        self.reconcile = model.reconcile
        self.retention = model.retention

    def secrets(self) -> list[str]:
        """Every secret value in the config, so logs and errors can scrub them."""
        found = [self.plain.signing_secret.get_secret_value()]
        if self.plain.api_key is not None:
            found.append(self.plain.api_key.get_secret_value())
        if self.server.admin_token is not None:
            found.append(self.server.admin_token.get_secret_value())
        for target in self.targets.values():
            for _name, value in target.config:
                if isinstance(value, SecretStr):
                    found.append(value.get_secret_value())
        return [s for s in found if s]


def load_config(path: str | Path) -> Config:
    """Load and validate a config file; raise :class:`YamlError` with file:line."""
    path = Path(path).resolve()

    raw = yamlfile.load(path, lambda value, _loc: yamlfile.expand_env(value))
    if not isinstance(raw.data, dict):
        raise raw.error((), "the config must be a mapping with at least a 'plain:' section")
    try:
        model = _ConfigModel.model_validate(raw.data)
    except ValidationError as exc:
        raise _first_error(raw, exc, ()) from None
    targets = {name: _load_target(raw, name, block) for name, block in model.targets.items()}
    return Config(path, model, targets)


def _load_target(raw: Located, name: str, block: dict[str, Any]) -> Target:
    loc = ("targets", name)
    type_name = block.get("type") if isinstance(block, dict) else None
    if not isinstance(type_name, str):
        raise raw.error(loc, f"target {name!r} needs a 'type:'")
    try:
        cls = adapter_class(type_name)
    except LookupError as exc:
        raise raw.error((*loc, "type"), str(exc)) from None
    base_dir = raw.path.parent
    block = dict(block)
    if "path" in block and isinstance(block["path"], str):
        block["path"] = str((base_dir / block["path"]).resolve())
    try:
        config = cls.config_model.model_validate(block)
    except ValidationError as exc:
        raise _first_error(raw, exc, loc) from None
    return Target(name, cls, config)


def _first_error(raw: Located, exc: ValidationError, prefix: yamlfile.Loc) -> YamlError:
    # A misspelt key usually explains a "missing" one too: point at the typo first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = prefix + tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    # pydantic echoes the input for some errors; never for secrets, so only its message.
    return raw.error(loc, f"{field}: {err['msg']}{more}")


__all__ = ["Config", "Target", "YamlError", "load_config"]
