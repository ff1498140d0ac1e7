"""Operational routes: the landing document, liveness and readiness for load balancers."""

from __future__ import annotations

from typing import Any

from flask import current_app

from presto import __version__
from presto.api.blueprint import ApiBlueprint
from presto.api.readiness_keys import CONNECTION_ROLES, FAILING_PROCESSES, READINESS_TIMEOUT
from presto.api.session import app_database
from presto.schemas.operational import HealthSchema, LandingSchema
from presto.services import health

bp = ApiBlueprint("operations", __name__, description="Landing, liveness and readiness.")


@bp.route("/", methods=["GET"])
@bp.response(200, LandingSchema)
def landing() -> dict[str, Any]:
    """Which service this is, its version, and links to its documentation and health."""
    return {
        "service": "presto",
        "version": __version__,
        "links": {"docs": "/docs", "openapi": "/openapi.json", "healthz": "/healthz"},
    }


@bp.route("/healthz", methods=["GET"])
@bp.response(200, HealthSchema)
def healthz() -> dict[str, str]:
    """Liveness: the worker answers requests. Touches no database, so a database outage
    does not get every instance restarted."""
    return {"status": "alive"}


@bp.route("/readyz", methods=["GET"])
@bp.response(200, HealthSchema)
@bp.documents_problems(503)
def readyz() -> dict[str, str]:
    """Readiness: the database answers within the bound, its schema is at this presto's
    newest migration, every helper process stays up and the change listener hears its own
    notification; 503 saying what is wrong otherwise. `database` notes a replica that is
    down (reads then go to the primary: still ready)."""
    engine = app_database(current_app).engine
    ready = health.check_ready(engine, current_app.config[READINESS_TIMEOUT])
    failing = current_app.config.get(FAILING_PROCESSES)
    health.check_processes(failing() if failing is not None else [])
    roles = current_app.config.get(CONNECTION_ROLES)
    return ready if roles is None else health.with_roles(ready, *roles())
