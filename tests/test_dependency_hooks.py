"""The upgrade canary: every private hook of a dependency that presto relies on.

The pins in requirements.txt keep these stable; when one is raised, a failure here names
the hook that moved and the presto file that uses it, before anything else breaks in a
way that is harder to read. Each test checks the hook exists with the shape presto needs:
the attribute, its type or its call signature, and where it matters, that the dependency
still calls it.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import flask
import flask_smorest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp_wsgi import WSGIHandler
from aiohttp_wsgi import wsgi as aiohttp_wsgi
from marshmallow import Schema, fields
from prometheus_client import CollectorRegistry, Histogram, values
from sqlalchemy.pool import QueuePool
from webargs.flaskparser import FlaskParser

from presto.serving.telemetry.instruments import LATENCY_BUCKETS


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# aiohttp: presto/serving/connections.py, presto/serving/request.py,
# presto/serving/prepared.py


def test_aiohttp_request_handler_keeps_its_queue_waiter_and_current_request() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()  # pragma: no cover - no request reaches it

    async def build() -> RequestHandler:
        return RequestHandler(web.Server(handler), loop=asyncio.get_running_loop())

    protocol = asyncio.run(build())
    where = "presto/serving/connections.py (GuardedRequestHandler) reads it"
    for name in ("_messages", "_current_request", "_waiter", "_request_in_progress"):
        assert name in RequestHandler.__slots__, f"RequestHandler.{name} is gone: {where}"
    assert len(protocol._messages) == 0, f"RequestHandler._messages not a queue: {where}"
    assert protocol._current_request is None, f"RequestHandler._current_request: {where}"
    assert protocol._waiter is None, f"RequestHandler._waiter: {where}"
    assert protocol._request_in_progress is False, f"_request_in_progress: {where}"


def test_aiohttp_server_keeps_three_keywords_and_passes_the_rest_to_each_handler() -> None:
    where = (
        "presto/serving/connections.py (GuardedServer._handler_options) passes the rest "
        "to RequestHandler itself"
    )
    own = set(parameters(web.Server.__init__)) - {"self", "handler", "kwargs"}
    assert own == {"request_factory", "handler_cancellation", "loop"}, where
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in inspect.getsource(
        web.Server.__call__
    ), where
    # The keywords presto/serving/worker.py gives the server, each one a handler's.
    handler_keywords = set(parameters(RequestHandler.__init__))
    assert {"access_log_class", "access_log", "keepalive_timeout"} <= handler_keywords, where


def test_aiohttp_finish_response_prepares_then_writes_eof() -> None:
    where = (
        "presto/serving/prepared.py (PreparedResponse) writes head and body in write_eof, "
        "after prepare"
    )
    source = inspect.getsource(RequestHandler.finish_response)
    prepare = source.index("await prepare_meth(request)")
    assert "prepare_meth = resp.prepare" in source, where
    assert prepare < source.index("await resp.write_eof()"), where
    assert source.index("await resp.write_eof()") < source.index("self.log_access("), where


def test_aiohttp_base_request_takes_what_the_request_factory_is_given() -> None:
    where = "presto/serving/request.py (wsgi_request_factory) builds TrackedRequest so"
    assert parameters(web.BaseRequest.__init__)[:7] == [
        "self",
        "message",
        "payload",
        "protocol",
        "payload_writer",
        "task",
        "loop",
    ], where
    assert parameters(web.Server._make_request) == [
        "self",
        "message",
        "payload",
        "protocol",
        "writer",
        "task",
    ], where


# aiohttp-wsgi: presto/serving/wsgi_environ.py


def test_aiohttp_wsgi_handler_builds_the_environ_and_runs_the_app_as_presto_does() -> None:
    where = "presto/serving/wsgi_environ.py (Pep3333WSGIHandler.respond) calls it"
    assert parameters(WSGIHandler._get_environ) == [
        "self",
        "request",
        "body",
        "content_length",
    ], where
    assert parameters(aiohttp_wsgi._run_application) == ["application", "environ"], where

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []  # pragma: no cover - never run

    handler = WSGIHandler(app, executor=None)
    assert handler._application is app, where
    assert hasattr(handler, "_executor"), where
    assert "self._get_environ(" in inspect.getsource(WSGIHandler.handle_request), where


# SQLAlchemy: presto/serving/telemetry/instruments.py (RequestMetrics.watch_pool)


def queue_pool() -> QueuePool:
    engine = sa.create_engine("sqlite://", poolclass=QueuePool, pool_size=2, max_overflow=1)
    assert isinstance(engine.pool, QueuePool)
    return engine.pool


def test_sqlalchemy_queue_pool_checks_out_through_do_get_under_max_overflow() -> None:
    where = "presto/serving/telemetry/instruments.py (RequestMetrics.watch_pool) times waits"
    pool = queue_pool()
    assert pool._max_overflow == 1, where
    assert parameters(pool._do_get) == [], where
    calls = []
    do_get = pool._do_get

    def counted() -> Any:
        calls.append(1)
        return do_get()

    pool._do_get = counted  # type: ignore[method-assign]
    pool.connect().close()
    assert calls == [1], f"a checkout no longer goes through QueuePool._do_get: {where}"


# prometheus-client: presto/serving/telemetry/instruments.py


def test_prometheus_histogram_child_keeps_bucket_and_sum_values() -> None:
    where = "presto/serving/telemetry/instruments.py (PendingHistogram.flush_into) adds to them"
    registry = CollectorRegistry()
    histogram = Histogram("hook", "h", ["route"], buckets=LATENCY_BUCKETS, registry=registry)
    child = histogram.labels("/")
    assert len(child._buckets) == len(LATENCY_BUCKETS) + 1, where
    child._buckets[0].inc(3)
    child._sum.inc(0.25)
    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
    }
    assert samples[("hook_bucket", str(LATENCY_BUCKETS[0]))] == 3, where
    assert samples[("hook_bucket", "+Inf")] == 3, where
    assert samples[("hook_sum", None)] == 0.25, where


def test_prometheus_values_picks_its_value_class_at_run_time() -> None:
    where = "presto/serving/telemetry/instruments.py (enable_multiprocess) sets values.ValueClass"
    assert hasattr(values, "ValueClass"), where
    assert callable(values.MultiProcessValue), where
    source = inspect.getsource(values)
    assert "def get_value_class" in source and "ValueClass = get_value_class()" in source, where
    # Metrics read the module attribute when a child is made, so setting it takes effect.
    from prometheus_client import metrics

    assert "values.ValueClass(" in inspect.getsource(metrics), where


# flask-smorest: presto/api/blueprint.py, presto/api/docs.py


def smorest_app(blueprint: flask_smorest.Blueprint, api_class: type = flask_smorest.Api) -> Any:
    app = flask.Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = api_class(app)
    api.register_blueprint(blueprint)
    return api


def test_flask_smorest_blueprint_runs_doc_callbacks_with_the_views_apidoc() -> None:
    where = (
        "presto/api/blueprint.py (ApiBlueprint.write/conditional) stores presto's keys in "
        "view._apidoc and reads them back in a _prepare_doc_cbks callback"
    )
    seen: list[dict[str, Any]] = []

    def callback(doc: dict[str, Any], doc_info: dict[str, Any], **_kwargs: Any) -> Any:
        seen.append(doc_info)
        doc.setdefault("parameters", []).append({"name": "x", "in": "header"})
        return doc

    blueprint = flask_smorest.Blueprint("hooks", __name__)
    assert isinstance(blueprint._prepare_doc_cbks, list), where
    blueprint._prepare_doc_cbks.append(callback)

    def marked(view: Any) -> Any:
        view._apidoc = {**getattr(view, "_apidoc", {}), "presto_mark": True}
        return view

    @blueprint.route("/thing")
    @marked
    @blueprint.response(200)
    def view() -> str:
        return ""  # pragma: no cover - never called

    spec = smorest_app(blueprint).spec.to_dict()
    assert any(info.get("presto_mark") for info in seen), where
    assert {"name": "x", "in": "header"} in spec["paths"]["/thing"]["get"]["parameters"], where


def test_flask_smorest_api_registers_responses_and_pagination_header_by_hooks() -> None:
    where = (
        "presto/api/docs.py (PrestoApi) overrides _register_responses and "
        "_register_pagination_header, and calls flask_smorest.utils.prepare_response"
    )
    called = []

    class Recording(flask_smorest.Api):
        def _register_responses(self) -> None:
            called.append("responses")
            super()._register_responses()

        def _register_pagination_header(self) -> None:
            called.append("pagination")
            super()._register_pagination_header()

    smorest_app(flask_smorest.Blueprint("calls", __name__), Recording)
    assert sorted(called) == ["pagination", "responses"], where
    assert hasattr(flask_smorest.Api, "DEFAULT_ERROR_RESPONSE_NAME"), where
    from flask_smorest.utils import prepare_response

    assert parameters(prepare_response) == ["response", "spec", "content_type"], where


# webargs: presto/api/blueprint.py (RequestParser)


def test_webargs_flask_parser_reads_json_bodies_through_raw_load_json() -> None:
    where = "presto/api/blueprint.py (RequestParser._raw_load_json) answers 415 and 400 there"
    calls: list[bytes] = []

    class Recording(FlaskParser):
        def _raw_load_json(self, req: flask.Request) -> Any:
            calls.append(req.get_data())
            return {"n": 1}

    class Body(Schema):
        n = fields.Integer()

    app = flask.Flask(__name__)
    with app.test_request_context("/", method="POST", data=b"{}", content_type="text/plain"):
        parsed = Recording().parse(Body(), location="json")
    assert calls == [b"{}"], where
    assert parsed == {"n": 1}, where


def test_marshmallow_list_serializes_through_its_inner_field() -> None:
    where = "presto/schemas/output.py (NestedModifiers) serializes each modifier so"

    class Thing:
        n = 7

    class Inner(Schema):
        n = fields.Integer()

    field = fields.List(fields.Nested(Inner))
    assert isinstance(field.inner, fields.Nested), where
    assert field.inner._serialize(Thing(), "things", None) == {"n": 7}, where
