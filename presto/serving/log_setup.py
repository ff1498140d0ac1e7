"""Log set-up of every presto process (workers, the supervisor, the publisher, the CLI):
one layout for the access log and every other line, as text or JSON."""

from __future__ import annotations

import logging

from presto.config import Settings
from presto.serving.accesslog import (
    LOG_FORMAT,
    JsonFormatter,
    configure_access_log,
)


def configure_logging(settings: Settings) -> None:
    """Log lines with time, level, process id and logger name to standard error, as text
    or as one JSON object per line."""
    handler = logging.StreamHandler()
    json = settings.log_format == "json"
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    configure_access_log(
        settings.log_level,
        json=json,
        trusted_proxies=settings.trusted_proxies,
        log_health_checks=settings.log_health_checks,
    )
