"""marshmallow schemas: JSON in and out, one module per direction.

- `output`: what answers hold (the item, nested or normalized, and the results of writes),
  with the rendering walk that nests modifiers;
- `queries`: query strings; `bodies`: write bodies;
- `links`: a modifier in a parent's list as a request sends it;
- `documents`: menu documents (export and import);
- `operational`: `/healthz`, `/readyz` and `/`;
- `values`: field builders and shapes both directions share.

May import `presto.services`, `presto.storage` and `presto.schema_fields` (and the modules
under every layer); never `api` or `serving`. The names below are re-exported so that
`from presto.schemas import ItemSchema` works as well as the module's own path.
"""

from presto.schemas.bodies import (
    BatchChangeSchema,
    BatchSchema,
    ItemCreateSchema,
    ItemPatchSchema,
    RestaurantPatchSchema,
    RestaurantSchema,
    SoldOutSchema,
)
from presto.schemas.documents import (
    DocumentItemSchema,
    MenuDocumentSchema,
    MenuImportResultSchema,
)
from presto.schemas.links import (
    ModifierLinkField,
    ModifierLinksSchema,
    modifier_link_doc,
    modifier_link_list,
)
from presto.schemas.operational import HealthSchema, LandingSchema
from presto.schemas.output import (
    BatchEntrySchema,
    BatchResultSchema,
    ItemDetailSchema,
    ItemSchema,
    ModifierIdList,
    ModifierLinksWithTerms,
    NestedModifiers,
    NormalizedItemSchema,
    NormalizedMenuSchema,
    SoldOutStateSchema,
)
from presto.schemas.queries import MenuImportQuerySchema, MenuQuerySchema, PageQuerySchema
from presto.schemas.values import Instant, WindowSchema, external_id_field

__all__ = [
    "BatchChangeSchema",
    "BatchEntrySchema",
    "BatchResultSchema",
    "BatchSchema",
    "DocumentItemSchema",
    "HealthSchema",
    "Instant",
    "ItemCreateSchema",
    "ItemDetailSchema",
    "ItemPatchSchema",
    "ItemSchema",
    "LandingSchema",
    "MenuDocumentSchema",
    "MenuImportQuerySchema",
    "MenuImportResultSchema",
    "MenuQuerySchema",
    "ModifierIdList",
    "ModifierLinkField",
    "ModifierLinksSchema",
    "ModifierLinksWithTerms",
    "NestedModifiers",
    "NormalizedItemSchema",
    "NormalizedMenuSchema",
    "PageQuerySchema",
    "RestaurantPatchSchema",
    "RestaurantSchema",
    "SoldOutSchema",
    "SoldOutStateSchema",
    "WindowSchema",
    "external_id_field",
    "modifier_link_doc",
    "modifier_link_list",
]
