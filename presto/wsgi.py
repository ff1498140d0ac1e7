"""The standard WSGI entry point, for any WSGI server: `gunicorn presto.wsgi:app`.

The database is `PRESTO_DATABASE_URL` (else an SQLite file presto.db in the working
directory), its tables already created (`presto serve --reset-db` does that). `presto
serve` remains the way presto is meant to run; this serves the same Flask app without
the async layer in front of it, for a WSGI server of your choice and for comparison.
"""

from presto.app import create_app
from presto.config import Settings, database_url_from_env

app = create_app(Settings(database_url=database_url_from_env()))
