"""The reference front end: a Java client parsing the menu call with Gson into List<Item>.

Needs a JDK and Gson's jar (Debian: default-jdk-headless, libgoogle-gson-java; .ci/run
installs them); skipped where they are missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

GSON_JAR = Path("/usr/share/java/gson.jar")
SOURCE = Path(__file__).parent / "java" / "MenuClient.java"


@pytest.fixture(scope="session")
def menu_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled MenuClient class directory."""
    if not (shutil.which("javac") and shutil.which("java") and GSON_JAR.exists()):
        pytest.skip("needs javac, java and /usr/share/java/gson.jar")
    classes = tmp_path_factory.mktemp("java")
    subprocess.run(
        ["javac", "-cp", str(GSON_JAR), "-d", str(classes), str(SOURCE)],
        check=True,
        capture_output=True,
    )
    return classes


@pytest.mark.usefixtures("demo")
def test_gson_parses_the_menu_into_a_list_of_items(client: FlaskClient, menu_client: Path) -> None:
    body = client.get("/restaurant/1/item").get_data()

    result = subprocess.run(
        ["java", "-cp", f"{menu_client}:{GSON_JAR}", "MenuClient"],
        input=body,
        capture_output=True,
        check=True,
    )

    facts = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert facts == {
        "items": "23",
        "first": "1:Classic Burger:1299:USD",
        "first.modifiers": "5",
        "side": "Choose your side:1:1",
        "depth": "6",
        "null_modifiers": "0",
    }
