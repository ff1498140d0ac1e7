"""The reference front end: a Java client parsing the menu call with Gson into List<Item>.

`MenuClient` knows only the fields the menu call had first: it must keep parsing as fields
are added. `ContentClient` reads the menu content fields too.

Needs a JDK and Gson's jar (Debian: default-jdk-headless, libgoogle-gson-java; .ci/run
installs them); skipped where they are missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.data import add_key, bearer
from tests.helpers.server_process import running_presto

pytestmark = pytest.mark.slow

# Where the demo menus' pictures are (presto/demo/burger-bar.json).
IMAGES = "https://images.presto.example/demo/"

GSON_JAR = Path("/usr/share/java/gson.jar")
SOURCES = [
    Path(__file__).parent / "java" / name
    for name in ("MenuClient.java", "ContentClient.java", "HttpMenuClient.java")
]


@pytest.fixture(scope="session")
def menu_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the compiled client classes."""
    if not (shutil.which("javac") and shutil.which("java") and GSON_JAR.exists()):
        pytest.skip("needs javac, java and /usr/share/java/gson.jar")
    classes = tmp_path_factory.mktemp("java")
    subprocess.run(
        ["javac", "-cp", str(GSON_JAR), "-d", str(classes), *map(str, SOURCES)],
        check=True,
        capture_output=True,
    )
    return classes


def run_client(classes: Path, name: str, body: bytes, *args: str) -> dict[str, str]:
    """What the Java client `name` printed about `body`, fact by fact."""
    result = subprocess.run(
        ["java", "-cp", f"{classes}:{GSON_JAR}", name, *args],
        input=body,
        capture_output=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.decode().splitlines())


@pytest.mark.usefixtures("demo")
def test_gson_parses_the_menu_into_a_list_of_items(client: FlaskClient, menu_client: Path) -> None:
    body = client.get("/restaurant/1/item").get_data()

    facts = run_client(menu_client, "MenuClient", body)

    assert facts == {
        "items": "23",
        "first": "1:Classic Burger:1299:USD",
        "first.modifiers": "5",
        "side": "Choose your side:1:1",
        "depth": "6",
        "null_modifiers": "0",
    }


@pytest.mark.usefixtures("demo")
def test_gson_parses_the_content_fields(
    client: FlaskClient, session: Session, menu_client: Path
) -> None:
    key = bearer(add_key(session, 1))
    changed = client.patch(
        "/restaurant/1/items",
        json={
            "items": [{"id": 1, "external_id": "PLU-1", "sold_out_until": "2026-11-20T14:00:00Z"}]
        },
        headers=key,
    )
    assert changed.status_code == 200, changed.get_json()
    # 08:00 in New York: breakfast is on; the burger is sold out until 09:00.
    body = client.get("/restaurant/1/item?at=2026-11-20T13:00:00Z").get_data()

    facts = run_client(menu_client, "ContentClient", body)

    assert facts == {
        "bacon.burger": "200",
        "bacon.salad": "150",
        "side.defaults": "Fries:1",
        "burger": f"720:{IMAGES}classic-burger.jpg:[gluten, sesame]:[]:false",
        "side_salad.tags": "[vegan, gluten_free]",
        "pancakes": "true:7:07:00-11:00",
        "cheesecake.calories": "null",
        "burger.sync": "PLU-1:true:2026-11-20T14:00:00+00:00:false",
    }


DEMO_FACTS = {
    "items": "23",
    "first": "1:Classic Burger:1299:USD",
    "first.modifiers": "5",
    "side": "Choose your side:1:1",
    "depth": "6",
    "null_modifiers": "0",
}


def test_a_client_asking_for_gzip_parses_the_compressed_menu(
    db_url: str, tmp_path: Path, menu_client: Path
) -> None:
    """As an Android app with OkHttp and Gson would: gzip on the wire, a List<Item> parsed,
    from a server miss (the published bytes) and a hit (the cache)."""
    with running_presto(db_url, tmp_path) as presto:
        url = f"{presto.url}/restaurant/1/item"
        miss = run_client(menu_client, "HttpMenuClient", b"", url)
        hit = run_client(menu_client, "HttpMenuClient", b"", url)

    assert miss == hit == {"status": "200", "encoding": "gzip", **DEMO_FACTS}
