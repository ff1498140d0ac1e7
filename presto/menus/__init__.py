"""The menu read model: the menu call as it is answered, whoever answers it.

- `rendering`: a loaded menu's body in the shape asked for, through the schemas;
- `publishing`: rendering and storing published bodies (`publish_*`, `MenuPublisher`), and
  the published body a menu call is answered with;
- `representation`: the rules of the menu call's answers that Flask's route and the warm
  path share (which calls are published and under which query strings, a tag per
  encoding, `Vary`, `Cache-Control`, the validity header).

It runs inside Flask (the route), and outside it (the publisher process, the CLI, the
benchmark, the warm path). May import `presto.schemas`, `presto.services`,
`presto.storage` and the modules under every layer; never `api`, `app` or `serving`.
"""
