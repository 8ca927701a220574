"""Prometheus metrics, all named ``plain_crm_sync_*``: one registry per service instance,
so tests can run several. docs/operations.md lists them with the alerts built on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "plain_crm_sync_"

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """Also the adapters' :class:`~connector.adapters.http.CallObserver` (``crm_response``,
    ``rate_limit_wait``), so vendor modules report calls without importing Prometheus."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=r)

        self.webhooks = counter("webhooks_total", "Webhook requests by outcome", ("outcome",))
        self.events = counter("events_total", "Accepted events by type and handling", ("event_type", "handling"))
        self.signature_failures = counter("signature_failures_total", "Webhooks refused for a bad signature")
        self.receive_seconds = Histogram(
            PREFIX + "webhook_receive_seconds", "Time from request to durable answer", buckets=_FAST, registry=r
        )
        self.store_commit_seconds = Histogram(
            PREFIX + "store_commit_seconds",
            "Time a store write took to commit, by operation",
            ["operation"],
            buckets=_FAST,
            registry=r,
        )
        self.changes = counter("changes_total", "Changes handed to targets, by outcome", ("target", "outcome"))
        self.retries = counter("retries_total", "Changes rescheduled for another attempt", ("target",))
        self.batch_seconds = Histogram(
            PREFIX + "batch_seconds", "Time an adapter took for one batch", ["target"], registry=r
        )
        self.crm_calls = counter("crm_calls_total", "HTTP calls to CRMs by target and status", ("target", "status"))
        self.rate_limited = counter("rate_limited_total", "429 answers received from CRMs", ("target",))
        self.limiter_wait = counter(
            "rate_limit_wait_seconds_total", "Seconds spent waiting for the client-side rate limiter", ("target",)
        )
        self.backlog = gauge("backlog", "Changes waiting per target", ("target",))
        self.oldest_pending = gauge(
            "oldest_pending_seconds", "Age of the oldest change waiting per target", ("target",)
        )
        self.dead_letters = gauge("dead_letters", "Dead letters per target", ("target",))
        self.mapping_reload_failures = counter("mapping_reload_failures_total", "Mapping reloads refused as invalid")
        self.backfill_runs = counter(
            "backfill_runs_total", "Backfill and reconcile runs by kind and outcome", ("kind", "outcome")
        )
        self.backfill_changes = counter(
            "backfill_changes_total", "Membership changes backfill and reconcile runs made", ("kind",)
        )
        self.pruned = counter("pruned_rows_total", "Rows retention deleted, by kind", ("kind",))
        self.store_bytes = gauge("store_size_bytes", "Size of the store on disk (where the backend can tell)")

    # -- CallObserver ---------------------------------------------------------------------

    def crm_response(self, target: str, status: int | None) -> None:
        """One HTTP exchange with a CRM; ``None`` when no answer came (connection error)."""
        self.crm_calls.labels(target, str(status) if status is not None else "error").inc()
        if status == 429:
            self.rate_limited.labels(target).inc()

    def rate_limit_wait(self, target: str, seconds: float) -> None:
        self.limiter_wait.labels(target).inc(max(0.0, seconds))

    def names(self) -> set[str]:
        """Every sample name this registry can expose (``_total``, ``_bucket``… included)."""
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "gauge": ("",)}  # fmt: skip
        found: set[str] = set()
        for family in self.registry.collect():
            found.update(family.name + s for s in suffixes.get(family.type, ("",)))
        return found
