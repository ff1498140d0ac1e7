"""Ports for programs that cannot bind port 0 and say which port they got (nginx).

presto itself takes `--port 0` (its workers share the port the OS picks) and logs the port;
use that. A port from here may be taken again before the program binds it: retry.
"""

from __future__ import annotations

import socket


def released_port() -> int:
    """A port on 127.0.0.1 the OS just handed out and this process let go of."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
