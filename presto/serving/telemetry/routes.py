"""Route templates of request paths, for metric labels that stay few.

A metric labelled with raw paths would grow a series per restaurant and item; labelled
with the Flask route that answers (`/restaurant/<int:restaurant_id>/item`) it stays small.
"""

from __future__ import annotations

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

# The label of a path no route answers (404s of every kind share it).
UNMATCHED = "unmatched"
# Paths remembered; past this the memo starts over, so scans of random paths can't grow it.
MEMO_SIZE = 10_000


class RouteTemplates:
    """Maps a method and path to the template of the route that answers it."""

    def __init__(self, url_map: Map, extra: dict[str, str] | None = None) -> None:
        self._adapter = url_map.bind("localhost")
        # Routes answered outside Flask (`/metrics`), by path.
        self._extra = extra or {}
        self._memo: dict[tuple[str, str], str] = {}

    def template(self, method: str, path: str) -> str:
        """The route template, or `UNMATCHED`."""
        key = (method, path)
        found = self._memo.get(key)
        if found is None:
            found = self._extra.get(path) or self._match(method, path)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _match(self, method: str, path: str) -> str:
        try:
            rule, _arguments = self._adapter.match(path, method, return_rule=True)
        except RequestRedirect:
            return UNMATCHED
        except HTTPException:
            return UNMATCHED
        return str(rule.rule)
