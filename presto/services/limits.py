"""Bounds on what one request may ask for, so that no write or read does unbounded work.

Lengths of names and descriptions and the price ceiling live with the columns in
presto.storage.models. The nesting cap (`MAX_MODIFIER_DEPTH`) lives here: the serializer
stops nesting at it (presto.schemas.output.NestedModifiers), and writes keep every chain
of links within it (presto.services.graph).
"""

from __future__ import annotations

# Deepest nesting of modifiers below a top-level item in a response. Uber Eats allows 6
# levels; 8 leaves room while bounding the work a bad graph can cause.
MAX_MODIFIER_DEPTH = 8
# Items (menu entries and modifiers together) one restaurant may hold.
MAX_ITEMS_PER_RESTAURANT = 5000
# Direct modifiers of one item.
MAX_MODIFIERS_PER_ITEM = 100
# Largest page of a list endpoint.
MAX_PAGE_SIZE = 100
# Highest page number of a list endpoint: offsets stay far inside a 64-bit integer.
MAX_PAGE = 1_000_000
# Deepest nesting of arrays and objects in a request body (a menu document needs 4).
MAX_JSON_DEPTH = 32
# Item objects the nested menu with `all=true` may hold: each item with its modifiers
# nested, a shared modifier counted once per place it appears. That menu holds every other
# nested response of a restaurant (the default menu call, each `GET .../item/{id}`), so
# this bounds them all; writes past it get 422 and the renderer refuses to go past it.
# 9 layers of 10 items, each linking the whole next layer, pass every other limit and
# would nest 10^8 copies of the bottom layer under each entry.
MAX_MENU_OBJECTS = 50_000
# Changes one batch write (`PATCH /restaurant/<id>/items`) may carry: a POS's whole price
# list, in one transaction.
MAX_BATCH_CHANGES = 1000
