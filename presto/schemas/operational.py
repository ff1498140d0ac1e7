"""What the operational calls answer: `/healthz`, `/readyz` and the landing page `/`."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    """The answer of `/healthz` and `/readyz` when all is well."""

    status = fields.String(metadata={"description": "`alive` or `ready`."})
    database = fields.String(metadata={"description": "`/readyz`: `ok`."})
    schema = fields.String(metadata={"description": "`/readyz`: the migration revision."})


class LandingSchema(Schema):
    """What `GET /` says: which service this is and where to read more."""

    service = fields.String()
    version = fields.String()
    links = fields.Dict(keys=fields.String(), values=fields.String())
