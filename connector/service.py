"""One running service: receiver, delivery runners, mapping reloads and the lifecycle.

SIGTERM / Ctrl-C: stop accepting, let in-flight batches finish (or release them), exit 0
within 10 s. SIGHUP: reload mappings. A crash loses nothing: accepted events are on disk
before the 2xx, and claimed work comes back when its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Iterable, Iterator

import uvicorn
from starlette.applications import Starlette

from connector.adapters.base import Adapter
from connector.adapters.http import HttpAdapter
from connector.app import create_app
from connector.config import Config
from connector.delivery.fairness import ReceiveFirst
from connector.delivery.runner import TargetRunner
from connector.mappings import MappingWatcher, load_mappings
from connector.metrics import Metrics
from connector.retention import run_retention
from connector.store import Store, TargetStatus, open_store

log = logging.getLogger("connector.service")

#: how long shutdown waits for in-flight batches before releasing them
DRAIN_SECONDS = 6.0
MAPPING_POLL_SECONDS = 1.0


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the service owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.store = store or open_store(config.store_url, config.base_dir)
        self.mappings = MappingWatcher(config, load_mappings(config))
        self.adapters: dict[str, Adapter] = {name: t.create() for name, t in config.targets.items()}
        for adapter in self.adapters.values():
            if isinstance(adapter, HttpAdapter):
                adapter.observer = self.metrics
        self.owner = f"serve-{uuid.uuid4().hex[:12]}"
        self.runners = {
            name: TargetRunner(self.store, adapter, config.delivery, self.metrics, f"{self.owner}:{name}")
            for name, adapter in self.adapters.items()
        }
        self.stopping = asyncio.Event()
        self.receiving = ReceiveFirst()
        for adapter in self.adapters.values():
            if isinstance(adapter, HttpAdapter):
                adapter.turn = self.receiving.turn
        self.store.on_new_work(self.wake)

    def wake(self, targets: Iterable[str]) -> None:
        """New work for these targets: wake their idle runners now rather than at next poll."""
        for name in targets:
            runner = self.runners.get(name)
            if runner is not None:
                runner.wake.set()

    def app(self) -> Starlette:
        """The HTTP app over this service's store, mappings and metrics."""
        token = self.config.server.admin_token
        return create_app(
            self.config.plain, self.store, self.mappings, self.metrics, self.wake, refresh_gauges=self.refresh_gauges,
            receiving=self.receiving, admin_token=token.get_secret_value() if token is not None else None,
            targets=sorted(self.adapters),
        )  # fmt: skip

    def reload_mappings(self) -> bool:
        ok = self.mappings.reload()
        if not ok:
            self.metrics.mapping_reload_failures.inc()
        return ok

    async def refresh_gauges(self) -> None:
        try:
            report = await self.store.status()
        except Exception:
            return
        for name in self.adapters:
            info = report.targets.get(name) or TargetStatus()
            self.metrics.backlog.labels(name).set(info.backlog)
            self.metrics.oldest_pending.labels(name).set(info.oldest_due_seconds)
            self.metrics.dead_letters.labels(name).set(info.dead_letters)
        if report.storage.get("size_bytes") is not None:
            self.metrics.store_bytes.set(report.storage["size_bytes"])

    async def _watch_mappings(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), MAPPING_POLL_SECONDS)
            try:
                if not self.stopping.is_set() and self.mappings.changed():
                    self.reload_mappings()
            except Exception:  # the watcher must outlive any surprise, or edits stop applying
                log.exception("mapping watcher error; previous mappings stay active")

    def _install_signals(self, server: uvicorn.Server) -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            log.info("shutting down: no new webhooks, finishing in-flight work")
            server.should_exit = True
            self.stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload_mappings)

    async def run(self) -> None:
        """Serve until a stop signal; return normally after a clean shutdown."""
        await self.store.open()
        try:
            released = await self.store.take_over(self.owner)
        except BaseException:
            await self.store.close()
            raise
        if released:
            log.info("resuming %d change(s) that were in flight when the service last stopped", released)
        log.info("serving as %s (the lease owner of the work this process claims)", self.owner)
        for name, adapter in self.adapters.items():
            await adapter.start()
            limiter = getattr(adapter, "limiter", None)  # HTTP adapters pace their calls
            if limiter is not None:
                await self.store.share_rate_limit(name, limiter)
        server = _Server(
            uvicorn.Config(
                self.app(),
                host=self.config.server.host,
                port=self.config.server.port,
                log_config=None,
                access_log=False,
                loop="none",
                http="auto",
                timeout_graceful_shutdown=3,
                lifespan="off",
            )
        )
        self._install_signals(server)
        delivery = [asyncio.create_task(r.run(self.stopping), name=f"deliver:{n}") for n, r in self.runners.items()]
        watcher = asyncio.create_task(self._watch_mappings(), name="mappings")
        retention = asyncio.create_task(
            run_retention(self.store, self.config.retention, self.stopping, self.metrics), name="retention"
        )
        background = [*delivery, watcher, retention]
        if self.config.reconcile.every:
            from connector.sync.schedule import Host, reconcile_forever

            host = Host(self.config, self.store, lambda: self.mappings.current, self.stopping,
                        lambda: self.wake(self.adapters), self.metrics)  # fmt: skip
            background.append(asyncio.create_task(reconcile_forever(host), name="reconcile"))
        try:
            await server.serve()
        finally:
            self.stopping.set()
            await self._drain(background)
            for adapter in self.adapters.values():
                with contextlib.suppress(Exception):
                    await adapter.close()
            await self.store.close()
            log.info("stopped")

    async def _drain(self, tasks: list[asyncio.Task[None]]) -> None:
        _done, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
