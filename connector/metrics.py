"""Prometheus metrics: one registry per service instance, so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter("plain_webhooks_total", "Webhook requests by result", ["result"], registry=r)
        self.events = Counter(
            "plain_events_total", "Accepted events by type and handling", ["event_type", "handling"], registry=r
        )
        self.receive_seconds = Histogram(
            "plain_webhook_receive_seconds",
            "Time from request to durable answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.changes = Counter(
            "crm_changes_total", "Changes handed to targets, by outcome", ["target", "outcome"], registry=r
        )
        self.batch_seconds = Histogram(
            "crm_batch_seconds", "Time an adapter took for one batch", ["target"], registry=r
        )
        self.backlog = Gauge("crm_backlog", "Changes waiting per target", ["target"], registry=r)
        self.dead_letters = Gauge("crm_dead_letters", "Dead letters per target", ["target"], registry=r)
        self.mapping_reload_errors = Counter(
            "mapping_reload_errors_total", "Mapping reloads refused as invalid", registry=r
        )
