"""Items made through the API, as a client would, for the API tests."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def create(client: FlaskClient, restaurant_id: int, key: dict[str, str], **fields: Any) -> int:
    """`POST` an item with `fields`; its id."""
    response = client.post(f"/restaurant/{restaurant_id}/item", json=fields, headers=key)
    assert response.status_code == 201, response.get_json()
    item_id: int = response.get_json()["id"]
    return item_id
