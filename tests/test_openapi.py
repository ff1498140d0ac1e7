"""The OpenAPI document and the docs page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

# Routes that serve the documentation itself rather than the API.
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/static/<path:filename>", "/static/<path:filename>"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] == "presto"


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_route_is_documented_with_its_errors(app: Flask, document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method != "parameters"
    }
    routes = {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule not in DOC_ROUTES
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert routes == documented

    for method, path in routes:
        operation = document["paths"][path][method.lower()]
        responses = set(operation["responses"])
        expected = {"default"}
        if "{restaurant_id}" in path:
            expected.add("404")
        if method != "GET":
            expected |= {"401", "403"}
            assert operation["security"] == [{"bearerKey": []}], (method, path)
        if method in {"POST", "PATCH", "PUT"}:
            expected |= {"400", "413", "415", "422"}
        # A sold-out call sets one state and takes no precondition: repeating it is harmless.
        # Webhook endpoints carry no entity tag (the relay changes their state).
        webhook = "/webhooks" in path
        if (
            method in {"PATCH", "PUT", "DELETE"}
            and path != "/restaurant"
            and not path.endswith("/sold-out")
            and not webhook
        ):
            expected.add("412")
        if (
            method == "GET"
            and "{restaurant_id}" in path
            and not path.endswith("/item")
            and not webhook
        ):
            expected.add("304")
        if path.endswith("/modifiers") or (method == "PUT" and path.endswith("/menu")):
            expected.add("409")
        assert expected <= responses, (method, path, expected - responses)


def test_error_responses_are_problem_json(document: dict[str, Any]) -> None:
    not_found = document["components"]["responses"]["NOT_FOUND"]
    assert list(not_found["content"]) == ["application/problem+json"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])


def test_item_fields_carry_their_limits(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create = schemas["ItemCreate"]
    assert create["required"] == ["name"]
    assert create["properties"]["name"]["maxLength"] == 200
    assert create["properties"]["price"]["maximum"] == 100_000_000
    assert create["additionalProperties"] is False


def test_docs_page_uses_only_local_assets(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/docs/static/"), asset
        served = client.get(asset)
        assert served.status_code == 200
        assert len(served.get_data()) > 1000
        served.close()
    assert '"/openapi.json"' in html
    assert "http://" not in html and "https://" not in html


def test_missing_asset_is_a_problem(client: FlaskClient) -> None:
    response = client.get("/docs/static/nope.js")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_descriptions_are_markdown_not_restructured_text(client: FlaskClient) -> None:
    text = client.get("/openapi.json").get_data(as_text=True)
    assert "``" not in text
    # The summary of the restaurant list names its header in Markdown.
    assert "`X-Pagination`" in text
