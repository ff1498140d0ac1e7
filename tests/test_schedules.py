"""Schedules in the restaurant's time zone: validation, `available` at a moment (`?at=`),
windows across midnight and DST, and a warm path that switches at a window boundary."""

from __future__ import annotations

import asyncio
import http.client
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.menus.representation import VALID_UNTIL_HEADER
from presto.services import schedules
from presto.serving.cache import MenuCache
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import MenuGenerations
from tests.helpers.clock import FakeClock
from tests.helpers.data import add_key, bearer, snapshot
from tests.helpers.problems import assert_problem
from tests.helpers.responses import FlaskAsWSGI, as_response
from tests.helpers.server_process import running_presto

WEEKEND = ["sat", "sun"]


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    return bearer(add_key(session))


def make_restaurant(client: FlaskClient, admin: dict[str, str], timezone: str) -> int:
    response = client.post(
        "/restaurant", json={"name": "Diner", "timezone": timezone}, headers=admin
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["timezone"] == timezone
    restaurant_id: int = response.get_json()["id"]
    return restaurant_id


def make_item(client: FlaskClient, restaurant_id: int, admin: dict[str, str], **fields: Any) -> int:
    response = client.post(f"/restaurant/{restaurant_id}/item", json=fields, headers=admin)
    assert response.status_code == 201, response.get_json()
    item_id: int = response.get_json()["id"]
    return item_id


def available_at(client: FlaskClient, restaurant_id: int, at: str) -> dict[str, bool]:
    response = client.get(f"/restaurant/{restaurant_id}/item", query_string={"at": at})
    assert response.status_code == 200, response.get_json()
    return {item["name"]: item["available"] for item in response.get_json()}


def test_a_restaurant_defaults_to_utc_and_takes_an_iana_zone(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    plain = client.post("/restaurant", json={"name": "Plain"}, headers=admin).get_json()
    assert plain["timezone"] == "UTC"

    changed = client.patch(
        f"/restaurant/{plain['id']}", json={"timezone": "Asia/Kolkata"}, headers=admin
    )

    assert changed.status_code == 200
    assert client.get(f"/restaurant/{plain['id']}").get_json()["timezone"] == "Asia/Kolkata"


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "../etc/passwd", "/UTC", " UTC", 5])
def test_an_unknown_time_zone_is_422(
    client: FlaskClient, engine: Engine, admin: dict[str, str], timezone: Any
) -> None:
    before = snapshot(engine)

    response = client.post("/restaurant", json={"name": "X", "timezone": timezone}, headers=admin)

    assert list(assert_problem(response, 422)["errors"]) == ["timezone"]
    assert snapshot(engine) == before


def test_changing_the_time_zone_changes_the_menu_tag(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")
    before = client.get(f"/restaurant/{restaurant_id}/item").headers["ETag"]

    client.patch(f"/restaurant/{restaurant_id}", json={"timezone": "Europe/Paris"}, headers=admin)

    assert client.get(f"/restaurant/{restaurant_id}/item").headers["ETag"] != before


@pytest.mark.parametrize(
    ("window", "errors"),
    [
        ({"days": ["mon"], "start": "07:00"}, {"end": ["Missing data for required field."]}),
        (
            {"days": [], "start": "07:00", "end": "11:00"},
            {"days": ["Length must be between 1 and 7."]},
        ),
        (
            {"days": ["monday"], "start": "07:00", "end": "11:00"},
            {"days": {"0": [f"Must be one of: {', '.join(schedules.DAYS)}."]}},
        ),
        (
            {"days": ["mon"], "start": "7:00", "end": "11:00"},
            {"start": ["Must be a local time HH:MM, 00:00 to 23:59."]},
        ),
        (
            {"days": ["mon"], "start": "07:00", "end": "25:00"},
            {"end": ["Must be a local time HH:MM, 00:00 to 24:00."]},
        ),
        (
            {"days": ["mon"], "start": "07:00", "end": "07:00"},
            {"end": ["Must differ from start."]},
        ),
        (
            {"days": ["mon", "mon"], "start": "07:00", "end": "11:00"},
            {"days": ["A day appears more than once."]},
        ),
        (
            {"days": ["mon"], "start": "07:00", "end": "11:00", "tz": "UTC"},
            {"tz": ["Unknown field."]},
        ),
    ],
)
def test_a_bad_window_is_422_by_index(
    client: FlaskClient,
    engine: Engine,
    admin: dict[str, str],
    window: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")
    before = snapshot(engine)

    response = client.post(
        f"/restaurant/{restaurant_id}/item",
        json={
            "name": "Brunch",
            "schedule": [{"days": ["sun"], "start": "10:00", "end": "14:00"}, window],
        },
        headers=admin,
    )

    assert assert_problem(response, 422)["errors"] == {"schedule": {"1": errors}}
    assert snapshot(engine) == before


def test_at_before_and_after_a_boundary(client: FlaskClient, admin: dict[str, str]) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Pancakes",
        schedule=[{"days": ["fri"], "start": "07:00", "end": "11:00"}],
    )
    make_item(client, restaurant_id, admin, name="Coffee")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Pie",
        available=False,
        schedule=[{"days": ["fri"], "start": "07:00", "end": "11:00"}],
    )

    # 2026-11-20 is a Friday.
    assert available_at(client, restaurant_id, "2026-11-20T06:59:59Z") == {
        "Pancakes": False,
        "Coffee": True,
        "Pie": False,
    }
    assert available_at(client, restaurant_id, "2026-11-20T07:00:00Z")["Pancakes"] is True
    assert available_at(client, restaurant_id, "2026-11-20T10:59:59+00:00")["Pancakes"] is True
    assert available_at(client, restaurant_id, "2026-11-20T11:00:00Z")["Pancakes"] is False
    # An offset in the time is honoured: 12:30+02:00 is 10:30 UTC.
    assert available_at(client, restaurant_id, "2026-11-20T12:30:00+02:00")["Pancakes"] is True
    # The tag names the period; a preview is never kept by the warm path.
    inside = client.get(f"/restaurant/{restaurant_id}/item?at=2026-11-20T08:00:00Z")
    after = client.get(f"/restaurant/{restaurant_id}/item?at=2026-11-20T11:30:00Z")
    assert inside.headers["ETag"].endswith(
        f'-u{int(datetime(2026, 11, 20, 11, tzinfo=UTC).timestamp())}"'
    )
    assert after.headers["ETag"] != inside.headers["ETag"]
    assert inside.headers[VALID_UNTIL_HEADER] == "0"
    # Filters follow the moment too.
    filtered = client.get(
        f"/restaurant/{restaurant_id}/item?available=true&at=2026-11-20T08:00:00Z"
    ).get_json()
    assert [item["name"] for item in filtered] == ["Pancakes", "Coffee"]


@pytest.mark.parametrize(
    "at", ["2026-11-20T08:00:00", "tomorrow", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00Z"]
)
def test_a_bad_at_is_422(client: FlaskClient, admin: dict[str, str], at: str) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")

    response = client.get(f"/restaurant/{restaurant_id}/item", query_string={"at": at})

    assert list(assert_problem(response, 422)["errors"]) == ["at"]


def test_a_window_crossing_midnight(client: FlaskClient, admin: dict[str, str]) -> None:
    restaurant_id = make_restaurant(client, admin, "America/New_York")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Late bites",
        schedule=[{"days": ["fri", "sat"], "start": "22:00", "end": "02:00"}],
    )

    def late(at: str) -> bool:
        return available_at(client, restaurant_id, at)["Late bites"]

    # New York is UTC-5 in November. Friday 21:59 local, 22:00, Saturday 01:59, 02:00.
    assert late("2026-11-21T02:59:00Z") is False
    assert late("2026-11-21T03:00:00Z") is True
    assert late("2026-11-21T06:59:00Z") is True
    assert late("2026-11-21T07:00:00Z") is False
    # Sunday 01:00 local belongs to Saturday's window; Monday 01:00 to none.
    assert late("2026-11-22T06:00:00Z") is True
    assert late("2026-11-23T06:00:00Z") is False


def test_a_dst_change_day_in_berlin(client: FlaskClient, admin: dict[str, str]) -> None:
    restaurant_id = make_restaurant(client, admin, "Europe/Berlin")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Brunch",
        schedule=[{"days": WEEKEND, "start": "07:00", "end": "11:00"}],
    )

    def brunch(at: str) -> bool:
        return available_at(client, restaurant_id, at)["Brunch"]

    # Saturday 2026-10-24 is summer time (UTC+2): 07:00 local is 05:00 UTC.
    assert brunch("2026-10-24T04:59:00Z") is False
    assert brunch("2026-10-24T05:00:00Z") is True
    # Clocks go back at 03:00 on Sunday 2026-10-25: 07:00 local is 06:00 UTC (UTC+1).
    assert brunch("2026-10-25T05:30:00Z") is False
    assert brunch("2026-10-25T06:00:00Z") is True
    assert brunch("2026-10-25T09:59:00Z") is True
    assert brunch("2026-10-25T10:00:00Z") is False
    # The period of Sunday morning ends at 11:00 local, 10:00 UTC.
    tag = client.get(f"/restaurant/{restaurant_id}/item?at=2026-10-25T06:30:00Z").headers["ETag"]
    assert tag.endswith(f'-u{int(datetime(2026, 10, 25, 10, tzinfo=UTC).timestamp())}"')


def test_next_boundary_in_the_repeated_hour() -> None:
    berlin = schedules.zone("Europe/Berlin")
    window = [{"days": ["sun"], "start": "02:30", "end": "04:00"}]
    # 02:30 happens twice on 2026-10-25; the window opens at the first (00:30 UTC).
    now = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert schedules.next_boundary([window], berlin, now) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert schedules.next_boundary([[]], berlin, now) is None


def test_a_scheduled_out_modifier_leaves_its_parent_available(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")
    burger = make_item(client, restaurant_id, admin, name="Burger")
    egg = make_item(
        client,
        restaurant_id,
        admin,
        name="Fried egg",
        standalone=False,
        schedule=[{"days": schedules.DAYS, "start": "07:00", "end": "11:00"}],
    )
    client.put(f"/restaurant/{restaurant_id}/item/{burger}/modifiers", json=[egg], headers=admin)

    noon = client.get(f"/restaurant/{restaurant_id}/item?at=2026-11-20T12:00:00Z").get_json()

    assert noon[0]["available"] is True
    assert noon[0]["modifiers"][0]["available"] is False


def test_a_cheap_304_holds_until_the_boundary(
    client: FlaskClient, engine: Engine, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    restaurant_id = make_restaurant(client, admin, "UTC")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Pancakes",
        schedule=[{"days": ["fri"], "start": "07:00", "end": "11:00"}],
    )
    clock = FakeClock(datetime(2026, 11, 20, 10, 59, 58, tzinfo=UTC), monkeypatch)
    tag = client.get(f"/restaurant/{restaurant_id}/item").headers["ETag"]
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    still = client.get(f"/restaurant/{restaurant_id}/item", headers={"If-None-Match": tag})
    clock.advance(2.0)
    after = client.get(f"/restaurant/{restaurant_id}/item", headers={"If-None-Match": tag})

    assert still.status_code == 304
    assert still.headers["ETag"] == tag
    # The published menu for the 304; then the period is over: the published read, the
    # restaurant, items and links, and the newly published menu stored.
    assert len(statements) == 1 + 5
    assert after.status_code == 200
    assert after.get_json()[0]["available"] is False


def test_the_warm_path_switches_at_a_boundary_without_a_write(
    client: FlaskClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    restaurant_id = make_restaurant(client, admin, "Europe/Berlin")
    make_item(
        client,
        restaurant_id,
        admin,
        name="Breakfast",
        schedule=[{"days": schedules.DAYS, "start": "07:00", "end": "11:00"}],
    )
    # Half a second before 11:00 in Berlin (10:00 UTC in November).
    clock = FakeClock(datetime(2026, 11, 20, 9, 59, 59, 500000, tzinfo=UTC), monkeypatch)
    generations = MenuGenerations()
    fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FlaskAsWSGI(client)
    path = f"/restaurant/{restaurant_id}/item"

    def get(target: str = path) -> web.Response:
        async def run() -> Any:
            return as_response(await fast_path.handle(make_mocked_request("GET", target), wsgi))

        response: web.Response = asyncio.run(run())
        return response

    def available(response: web.Response) -> bool:
        assert isinstance(response.body, bytes)
        return b'"available":true' in response.body

    try:
        first, second = get(), get()
        assert wsgi.calls == 1
        assert available(first) and available(second)
        assert VALID_UNTIL_HEADER not in first.headers
        # A preview of another moment is answered but not kept.
        assert not available(get(f"{path}?at=2026-11-20T12:00:00%2B01:00"))
        assert not available(get(f"{path}?at=2026-11-20T12:00:00%2B01:00"))
        assert wsgi.calls == 3
        assert available(get())
        assert wsgi.calls == 3

        clock.advance(0.5)  # 11:00:00.0 in Berlin
        third, fourth = get(), get()

        assert wsgi.calls == 4
        assert not available(third) and not available(fourth)
        assert third.headers["ETag"] != first.headers["ETag"]
    finally:
        generations.close()


@pytest.mark.parametrize(
    ("zone_name", "day"),
    [
        ("Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC)),  # clocks go forward
        ("Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC)),  # clocks go back
        ("America/New_York", datetime(2026, 11, 1, 0, tzinfo=UTC)),
    ],
)
def test_availability_changes_only_at_the_boundaries_it_announces(
    zone_name: str, day: datetime
) -> None:
    """Minute by minute over a DST change, `available` flips exactly at `next_boundary`, so
    a cached menu kept until then is never stale."""
    tz = schedules.zone(zone_name)
    windows = [
        [{"days": list(schedules.DAYS), "start": "02:30", "end": "04:00"}],
        [{"days": ["sat", "sun"], "start": "01:15", "end": "02:45"}],
        [{"days": list(schedules.DAYS), "start": "22:00", "end": "02:30"}],
    ]
    for schedule in windows:
        moment = day
        state = schedules.in_schedule(schedule, moment, tz)
        boundary = schedules.next_boundary([schedule], tz, moment)
        flips = 0
        for _ in range(36 * 60):
            moment += timedelta(minutes=1)
            now_state = schedules.in_schedule(schedule, moment, tz)
            assert boundary is not None
            if moment >= boundary:
                boundary = schedules.next_boundary([schedule], tz, moment - timedelta(seconds=1))
                assert boundary == moment or now_state == state, (schedule, moment)
                flips += now_state != state
                boundary = schedules.next_boundary([schedule], tz, moment)
            else:
                assert now_state == state, (schedule, moment)
            state = now_state
        assert flips >= 2


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("cache_bytes", ["0", "1000000"])
def test_over_http_the_validity_header_stays_inside(
    db_url: str, tmp_path: Path, cache_bytes: str
) -> None:
    """The demo Burger Bar serves breakfast on a schedule: its tag names the period, and the
    header that tells the warm path when the period ends never reaches a client."""
    with running_presto(db_url, tmp_path, "--cache-bytes", cache_bytes) as presto:
        host, port = presto.address
        for path in [
            "/restaurant/1/item",
            "/restaurant/1/item",
            "/restaurant/1/item?at=2026-11-20T13:00:00Z",
        ]:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            finally:
                connection.close()
            assert response.status == 200
            assert response.getheader(VALID_UNTIL_HEADER) is None
            assert re.fullmatch(r'"m1-[\d.]+-u\d+"', response.getheader("ETag") or "")
            assert b'"Buttermilk Pancakes"' in body
