"""A worker's connections beside its pool, wired up: the change listener (`--listen-url`)
with its self-check, the published reads (from `--replica-url` when there is one), and
what they report to `/readyz` and `/metrics`."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from presto.api.readiness_keys import CONNECTION_ROLES
from presto.config import Settings
from presto.serving.admission import Admission
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.serving.published_reads import (
    PublishedReads,
    loop_published_reads,
    published_reads,
)
from presto.serving.replica_reads import ReplicaRoutedReads
from presto.serving.telemetry.instruments import RequestMetrics, RoleState
from presto.storage.roles import ConnectionRoles, libpq_conninfo

# `/readyz`'s reason when the listener does not hear its own notification.
LISTENER_UNVERIFIED = (
    "The menu change listener does not receive its own notification (is --listen-url a "
    "transaction-mode pooler?): menus are not cached; see the log."
)
# What `/readyz` adds to `database` while the replica is left alone.
REPLICA_DOWN = "replica unavailable, published menus read from the primary"


def make_listener(settings: Settings, generations: MenuGenerations) -> MenuChangeListener:
    """The listener on `--listen-url` (else the pool's URL), checking that it hears a
    notification sent through the pool's URL, as writes send theirs."""
    roles = ConnectionRoles.of(settings)
    return MenuChangeListener(
        libpq_conninfo(roles.listen_url, settings.db_connect_timeout),
        generations,
        probe_conninfo=libpq_conninfo(roles.pool_url, settings.db_connect_timeout),
    )


def make_published_reads(
    settings: Settings,
    admission: Admission,
    generations: MenuGenerations,
    listener: MenuChangeListener | None,
) -> PublishedReads:
    """Reads from the replica, routed by what the listener hears, when there is one and a
    listener; else from the pool's database."""
    roles = ConnectionRoles.of(settings)
    if roles.replica_url is None or listener is None:
        return published_reads(settings, admission)
    routed = ReplicaRoutedReads(
        loop_published_reads(settings, admission, roles.replica_url),
        loop_published_reads(settings, admission, roles.pool_url),
        generations,
        admission,
    )
    listener.on_listening = routed.on_listening
    return routed


def readiness(
    listener: MenuChangeListener | None, reads: PublishedReads | None
) -> Callable[[], tuple[str | None, str | None]]:
    """`/readyz`'s view: (why not ready, or None; a note on the database, or None)."""

    def state() -> tuple[str | None, str | None]:
        refusal = (
            LISTENER_UNVERIFIED if listener is not None and listener.verified is False else None
        )
        note = None
        if isinstance(reads, ReplicaRoutedReads) and not reads.available:
            note = REPLICA_DOWN
        return refusal, note

    return state


def role_state(
    listener: MenuChangeListener | None, reads: PublishedReads | None
) -> Callable[[], RoleState]:
    """`/metrics`' view of the listener's check and the replica."""

    def state() -> RoleState:
        verified = None if listener is None else listener.verified is not False
        if isinstance(reads, ReplicaRoutedReads):
            return verified, reads.available, reads.counts.as_dict()
        return verified, None, {}

    return state


def report_roles(
    app: Flask,
    metrics: RequestMetrics,
    listener: MenuChangeListener | None,
    reads: PublishedReads | None,
) -> None:
    """Let `/readyz` and `/metrics` report the listener's check and the replica."""
    app.config[CONNECTION_ROLES] = readiness(listener, reads)
    metrics.watch_roles(role_state(listener, reads))
