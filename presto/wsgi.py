"""The standard WSGI entry point, for any WSGI server: `gunicorn presto.wsgi:app`.

Settings come from the same `PRESTO_*` environment variables as `presto serve` reads
(`PRESTO_DATABASE_URL`, else an SQLite file presto.db in the working directory), the
database already migrated (`presto db upgrade`). `presto serve` remains the way presto is
meant to run; this serves the same Flask app without the async layer in front of it, for
a WSGI server of your choice and for comparison.
"""

from presto.app import create_app
from presto.settings_parser import settings_from_environ

app = create_app(settings_from_environ())
