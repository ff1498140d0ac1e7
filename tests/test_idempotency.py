"""`Idempotency-Key` on writes: a retry gets the first answer, in flight 409, another
request 422, and keys expire."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.idempotency import KEY_PATTERN, parse_key
from presto.app import create_app
from presto.config import Settings
from presto.services import idempotency
from presto.storage.models import ApiKey, IdempotencyRecord, Item
from tests.helpers.clock import FakeClock
from tests.helpers.data import add_key, bearer, snapshot
from tests.helpers.http import request as send
from tests.helpers.problems import assert_problem
from tests.helpers.server_process import running_presto

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def keyed(key: dict[str, str], idempotency_key: str) -> dict[str, str]:
    return {**key, "Idempotency-Key": f'"{idempotency_key}"'}


def item_count(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return (
            connection.scalar(sa.select(sa.func.count()).select_from(Item).where(Item.name == name))
            or 0
        )


def records(engine: Engine) -> list[tuple[str, bool, int | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(IdempotencyRecord.key, IdempotencyRecord.committed, IdempotencyRecord.status)
        )
        return sorted((row[0], row[1], row[2]) for row in rows)


def test_a_post_retried_five_times_creates_one_item(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    headers = keyed(key, "order-1")
    answers = [
        client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
        for _ in range(5)
    ]

    first = answers[0]
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    for retry in answers[1:]:
        assert retry.status_code == 201
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.get_json() == first.get_json()
        assert retry.headers["Location"] == first.headers["Location"]
        assert retry.headers["ETag"] == first.headers["ETag"]
        assert retry.mimetype == "application/json"
    assert item_count(engine, "Soup") == 1
    assert records(engine) == [("order-1", True, 201)]


def test_the_same_key_with_another_request_is_422(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    headers = keyed(key, "order-1")
    client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
    before = snapshot(engine)

    other_body = client.post(f"/restaurant/{diner}/item", json={"name": "Stew"}, headers=headers)
    other_path = client.post(
        f"/restaurant/{diner}/item?x=1", json={"name": "Soup"}, headers=headers
    )
    item_id = client.get(f"/restaurant/{diner}/item").get_json()[0]["id"]
    other_method = client.patch(
        f"/restaurant/{diner}/item/{item_id}", json={"name": "Soup"}, headers=headers
    )

    for answer in (other_body, other_path, other_method):
        body = assert_problem(answer, 422)
        assert body["detail"] == (
            "Idempotency-Key 'order-1' was used for another request (method, path or body)."
        )
    assert snapshot(engine) == before


def test_a_retry_while_the_first_is_in_flight_is_409(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(START, monkeypatch)
    first = client.post(
        f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=keyed(key, "probe")
    )
    api_key_id = session.scalars(sa.select(IdempotencyRecord.api_key_id)).one()
    # A first request of "order-2" that has claimed its key and not yet finished.
    fingerprint = "0" * 64
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id, key="order-2", fingerprint=fingerprint, created_at=START
        )
    )
    session.commit()
    monkeypatch.setattr("presto.api.idempotency.fingerprint", lambda: fingerprint)
    before = snapshot(engine)

    busy = client.post(
        f"/restaurant/{diner}/item", json={"name": "Stew"}, headers=keyed(key, "order-2")
    )

    assert first.status_code == 201
    assert "still being processed" in assert_problem(busy, 409)["detail"]
    assert snapshot(engine) == before
    # A claim whose worker died is taken over once the in-flight lease is over.
    clock.advance(idempotency.IN_FLIGHT_LEASE + 1)
    taken = client.post(
        f"/restaurant/{diner}/item", json={"name": "Stew"}, headers=keyed(key, "order-2")
    )
    assert taken.status_code == 201
    assert item_count(engine, "Stew") == 1


def test_a_key_expires_after_the_retention(
    client: FlaskClient,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(START, monkeypatch)
    headers = keyed(key, "order-1")
    client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
    clock.advance(24 * 3600 - 1)
    still = client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
    assert still.headers["Idempotent-Replayed"] == "true"

    clock.advance(1)
    again = client.post(f"/restaurant/{diner}/item", json={"name": "Stew"}, headers=headers)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert (item_count(engine, "Soup"), item_count(engine, "Stew")) == (1, 1)


def test_the_retention_is_a_setting_and_expired_keys_are_purged(
    engine: Engine,
    db_url: str,
    diner: int,
    key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Menus published in the write's transaction, as the `app` fixture does: no publisher
    # thread outlives the test with a connection.
    settings = Settings(
        database_url=db_url, idempotency_retention=60, publish_on_write="transaction"
    )
    app = create_app(settings, engine=engine)
    client = app.test_client()
    clock = FakeClock(START, monkeypatch)
    for name in ("a", "b"):
        client.post(f"/restaurant/{diner}/item", json={"name": name}, headers=keyed(key, name))
    clock.advance(61)
    monkeypatch.setattr(idempotency, "_last_purge", 0.0)

    client.post(f"/restaurant/{diner}/item", json={"name": "c"}, headers=keyed(key, "c"))

    # The purge ran on its own with the next keyed write: only the new key is left.
    assert records(engine) == [("c", True, 201)]
    again = client.post(f"/restaurant/{diner}/item", json={"name": "a2"}, headers=keyed(key, "a"))
    assert again.status_code == 201


def test_a_failed_request_leaves_no_key(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    headers = keyed(key, "order-1")
    before = snapshot(engine)

    invalid = client.post(f"/restaurant/{diner}/item", json={"price": -1}, headers=headers)
    missing = client.patch(f"/restaurant/{diner}/item/999", json={"price": 1}, headers=headers)

    assert_problem(invalid, 422)
    assert_problem(missing, 404)
    assert snapshot(engine) == before
    fixed = client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
    assert fixed.status_code == 201


def test_keys_belong_to_their_api_key(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    admin = bearer(add_key(session))
    session.commit()
    mine = client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=keyed(key, "k"))
    theirs = client.post(
        f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=keyed(admin, "k")
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert item_count(engine, "Soup") == 2
    # Revoking... deleting a key deletes its records with it.
    with engine.begin() as connection:
        connection.execute(sa.delete(ApiKey).where(ApiKey.admin.is_(True)))
    assert [row[0] for row in records(engine)] == ["k"]


def test_delete_and_patch_replay_their_first_answer(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    item_id = client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=key)
    url = f"/restaurant/{diner}/item/{item_id.get_json()['id']}"
    patched = client.patch(url, json={"price": 5}, headers=keyed(key, "p"))
    client.patch(url, json={"price": 7}, headers=key)
    replayed = client.patch(url, json={"price": 5}, headers=keyed(key, "p"))
    assert replayed.get_json() == patched.get_json()
    assert client.get(url).get_json()["price"] == 7

    deleted = client.delete(url, headers=keyed(key, "d"))
    retried = client.delete(url, headers=keyed(key, "d"))

    assert (deleted.status_code, retried.status_code) == (204, 204)
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert_problem(client.delete(url, headers=key), 404)


@pytest.mark.parametrize(
    "value",
    ['""', '"a', '"tab\there"', '"x";p=1', '"' + "x" * 256 + '"', '"é"', "a b", "x" * 256, "é"],
)
def test_a_bad_key_is_400_and_changes_nothing(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str], value: str
) -> None:
    before = snapshot(engine)
    refused = client.post(
        f"/restaurant/{diner}/item",
        json={"name": "Soup"},
        headers={**key, "Idempotency-Key": value},
    )
    assert "Idempotency-Key" in assert_problem(refused, 400)["detail"]
    assert snapshot(engine) == before


def test_a_bare_token_is_the_same_key_as_its_quoted_form(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    first = client.post(
        f"/restaurant/{diner}/item",
        json={"name": "Soup"},
        headers={**key, "Idempotency-Key": "k-1"},
    )
    again = client.post(
        f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=keyed(key, "k-1")
    )
    assert (first.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert item_count(engine, "Soup") == 1


def test_an_escaped_quote_is_part_of_the_key(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    headers = {**key, "Idempotency-Key": r'"say \"hi\" \\ now"'}
    client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=headers)
    assert records(engine) == [('say "hi" \\ now', True, 201)]


@pytest.mark.e2e
@pytest.mark.slow
def test_concurrent_retries_on_two_workers_create_one_row(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path, workers=2, key=True) as presto:
        address = presto.address
        headers = {
            "Authorization": f"Bearer {presto.key}",
            "Idempotency-Key": '"concurrent-1"',
        }
        answers: list[Any] = []
        lock = threading.Lock()

        def retry_five_times() -> None:
            for _ in range(5):
                answer = send(address, "POST", "/restaurant/1/item", {"name": "Twin"}, headers)
                with lock:
                    answers.append(answer)

        threads = [threading.Thread(target=retry_five_times) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        created = [answer for answer in answers if answer.status == 201]
        assert len(answers) == 10
        assert {answer.status for answer in answers} <= {201, 409}
        assert created, [answer.body for answer in answers]
        assert len({answer.body for answer in created}) == 1
        assert sum("idempotent-replayed" not in answer.headers for answer in created) == 1
        menu = send(address, "GET", "/restaurant/1/item?all=true").json()
        assert [item["name"] for item in menu].count("Twin") == 1


def test_the_openapi_document_names_the_header_on_every_write(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    parameter = document["components"]["parameters"]["IdempotencyKey"]
    assert (parameter["in"], parameter["name"]) == ("header", "Idempotency-Key")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in {"post", "patch", "put", "delete"}:
                refs = [p.get("$ref", "") for p in operation.get("parameters", [])]
                assert "#/components/parameters/IdempotencyKey" in refs, (method, path)
                assert {"409", "422"} <= set(operation["responses"]), (method, path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(KEY_PATTERN))
def test_every_value_the_documented_pattern_admits_is_a_key(value: str) -> None:
    """schemathesis found this: a regular expression's `$` admits a final line break, and
    a value the OpenAPI document allows must not be refused."""
    assert 1 <= len(parse_key(value)) <= 255
