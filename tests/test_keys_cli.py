"""`presto keys create|revoke|list`, and the keys they make used on the API."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from presto.cli import main
from presto.services.keys import hash_key, list_keys
from tests.helpers.data import add_restaurant, bearer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_create_prints_the_key_once_and_stores_its_hash(
    capsys: pytest.CaptureFixture[str], db_url: str, session: Session, client: FlaskClient
) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()

    status, out, err = run(
        capsys, "keys", "create", "--restaurant", str(restaurant_id), "--database-url", db_url
    )

    assert status == 0
    secret = out.strip()
    assert secret.startswith("presto_") and len(secret) == 50
    assert f"restaurant {restaurant_id}" in err
    (row,) = list_keys(session)
    assert row.key_hash == hash_key(secret) != secret
    assert secret.startswith(row.prefix) and len(row.prefix) == 16
    assert (row.admin, row.restaurant_id, row.revoked_at) == (False, restaurant_id, None)
    created = client.post(
        f"/restaurant/{restaurant_id}/item", json={"name": "Soup"}, headers=bearer(secret)
    )
    assert created.status_code == 201
    status, out, _err = run(capsys, "keys", "list", "--database-url", db_url)
    assert status == 0
    assert secret not in out
    assert row.prefix in out


def test_admin_key_and_revoke(
    capsys: pytest.CaptureFixture[str], db_url: str, client: FlaskClient
) -> None:
    status, out, _err = run(capsys, "keys", "create", "--admin", "--database-url", db_url)
    assert status == 0
    secret = out.strip()
    assert client.post("/restaurant", json={"name": "A"}, headers=bearer(secret)).status_code == 201

    status, out, _err = run(capsys, "keys", "revoke", "1", "--database-url", db_url)
    assert status == 0
    assert "revoked" in out
    response = client.post("/restaurant", json={"name": "B"}, headers=bearer(secret))
    assert response.status_code == 401
    status, out, _err = run(capsys, "keys", "list", "--database-url", db_url)
    (line,) = out.splitlines()[1:]
    assert line.split()[:3] == ["1", secret[:16] + "...", "admin"]
    assert line.split()[-1] != "-"


def test_unknown_restaurant_or_key_fails(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    status, out, err = run(capsys, "keys", "create", "--restaurant", "9", "--database-url", db_url)
    assert (status, out) == (1, "")
    assert "Restaurant 9 does not exist." in err
    status, _out, err = run(capsys, "keys", "revoke", "9", "--database-url", db_url)
    assert status == 1
    assert "Key 9 does not exist." in err


def test_create_needs_exactly_one_scope(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["keys", "create"], ["keys", "create", "--admin", "--restaurant", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_keys_commands_default_to_the_environment_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from presto.cli import build_parser

    monkeypatch.setenv("PRESTO_DATABASE_URL", "postgresql+psycopg://db.example/menu")
    for argv in (["keys", "create", "--admin"], ["keys", "revoke", "1"], ["keys", "list"]):
        args = build_parser().parse_args(argv)
        assert args.database_url == "postgresql+psycopg://db.example/menu"
