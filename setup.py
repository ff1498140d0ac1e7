"""Packaging for presto; exact dependency pins live in requirements.txt."""

from setuptools import find_packages, setup

setup(
    name="presto",
    version="0.1.0",
    description="A REST service that serves restaurant menus from a relational database.",
    python_requires=">=3.11",
    packages=find_packages(include=["presto", "presto.*"]),
    # The migration environment is a directory of scripts alembic loads by path, not a
    # package, so its files ship as data of the presto package.
    package_data={
        "presto.storage": [
            "migrations/*.py",
            "migrations/*.mako",
            "migrations/versions/*.py",
        ],
        # The demo of `--reset-db`: its restaurants and menu documents.
        "presto.demo": ["*.json"],
    },
    install_requires=[
        "Flask>=3.1",
        "aiohttp>=3.14",
        "aiohttp-wsgi>=0.10",
        "uvloop>=0.21",
        "SQLAlchemy>=2.1",
        "marshmallow>=4",
        "marshmallow-sqlalchemy>=1.4",
        "psycopg[binary]>=3.2",
        "alembic>=1.13",
        "orjson>=3.10",
        "zlib-ng>=1.0",
        "flask-smorest>=0.47",
        "swagger-ui-bundle>=1.1",
    ],
    entry_points={"console_scripts": ["presto = presto.cli:main"]},
)
