"""The demo `--reset-db` loads: three restaurants (`restaurants.json`, `POST /restaurant`
bodies) and their menus as menu documents (`burger-bar.json`, `trattoria.json`,
`sushi.json`: each what `GET /restaurant/<id>/menu` answers on the demo database), and
`loading`, which loads them through the menu document import. May import `presto.schemas`,
`presto.services`, `presto.storage` and the modules under every layer.
"""
