"""The demo menus that `--reset-db` loads: three restaurants, nested and shared modifiers.

Each menu is written as items keyed by a short name, then the modifier links by those
names. Prices are integer minor units of the restaurant's currency (cents, or yen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from presto.storage.links import ModifierLink, insert_links, link_rows
from presto.storage.models import ITEM_FIELDS, ApiKey, Item, Restaurant, item_modifier


@dataclass(frozen=True)
class DemoItem:
    """One item of a demo menu; `standalone=False` marks a modifier-only item."""

    name: str
    price: int = 0
    category: str | None = None
    description: str = ""
    standalone: bool = True
    available: bool = True
    min_choices: int = 0
    max_choices: int | None = None
    schedule: list[dict[str, Any]] = field(default_factory=list)
    image_url: str | None = None
    tags: list[str] = field(default_factory=list)
    allergens: list[str] = field(default_factory=list)
    calories: int | None = None
    external_id: str | None = None
    sold_out_until: datetime | None = None


@dataclass(frozen=True)
class OfferedAs:
    """A modifier as one parent offers it: a price there, or pre-selected."""

    key: str
    price: int | None = None
    is_default: bool = False


# Breakfast is served every day from 07:00 to 11:00, restaurant time.
BREAKFAST_HOURS = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "07:00", "end": "11:00"}
]
IMAGES = "https://images.presto.example/demo/"


def option(name: str, price: int = 0, **kwargs: object) -> DemoItem:
    """A modifier-only item: a choice inside a group, or an add-on."""
    return DemoItem(name, price, standalone=False, **kwargs)  # type: ignore[arg-type]


def group(name: str, min_choices: int, max_choices: int | None) -> DemoItem:
    """A modifier-only item whose own modifiers are the choices."""
    return DemoItem(name, 0, standalone=False, min_choices=min_choices, max_choices=max_choices)


@dataclass(frozen=True)
class DemoMenu:
    """A restaurant with its items and, per item key, its modifiers' keys in order."""

    name: str
    currency: str
    items: dict[str, DemoItem]
    modifiers: dict[str, list[str | OfferedAs]] = field(default_factory=dict)
    timezone: str = "UTC"


BURGER_BAR = DemoMenu(
    name="Presto Burger Bar",
    currency="USD",
    timezone="America/New_York",
    items={
        # Burgers
        "classic": DemoItem(
            "Classic Burger",
            1299,
            "Burgers",
            "Beef patty, lettuce, tomato.",
            image_url=IMAGES + "classic-burger.jpg",
            allergens=["gluten", "sesame"],
            calories=720,
        ),
        "cheese": DemoItem(
            "Cheeseburger",
            1399,
            "Burgers",
            "Classic with aged cheddar.",
            image_url=IMAGES + "cheeseburger.jpg",
            allergens=["gluten", "milk", "sesame"],
            calories=850,
        ),
        "bbq": DemoItem("Bacon BBQ Burger", 1599, "Burgers", "Bacon, onion rings, BBQ sauce."),
        "veggie": DemoItem(
            "Veggie Burger",
            1299,
            "Burgers",
            "Black bean patty, avocado.",
            tags=["vegetarian"],
            allergens=["gluten", "soybeans"],
            calories=610,
        ),
        "chicken": DemoItem("Crispy Chicken Sandwich", 1349, "Burgers", "Buttermilk fried."),
        "kids": DemoItem("Kids Burger", 799, "Burgers", "Smaller patty, plain."),
        # Sides
        "fries": DemoItem(
            "Fries", 399, "Sides", "Hand-cut, skin on.", tags=["vegan", "gluten_free"], calories=365
        ),
        "sweet_fries": DemoItem("Sweet Potato Fries", 499, "Sides"),
        "rings": DemoItem("Onion Rings", 499, "Sides", "Beer-battered."),
        "side_salad": DemoItem(
            "Side Salad",
            450,
            "Sides",
            "Mixed greens, cucumber, tomato.",
            tags=["vegan", "gluten_free"],
            calories=120,
        ),
        # Salads
        "caesar": DemoItem("Caesar Salad", 1099, "Salads", "Romaine, parmesan, croutons."),
        "garden": DemoItem("Garden Salad", 899, "Salads", "Seasonal vegetables."),
        # Drinks
        "cola": DemoItem("Cola", 299, "Drinks"),
        "diet_cola": DemoItem("Diet Cola", 299, "Drinks"),
        "lemonade": DemoItem("Fresh Lemonade", 349, "Drinks"),
        "shake": DemoItem(
            "Milkshake", 599, "Drinks", "Hand-spun.", allergens=["milk"], calories=540
        ),
        "beer": DemoItem(
            "Craft Beer",
            699,
            "Drinks",
            "Ask for today's tap.",
            tags=["contains_alcohol"],
            allergens=["gluten"],
        ),
        # Desserts
        "brownie": DemoItem(
            "Chocolate Brownie",
            599,
            "Desserts",
            image_url=IMAGES + "brownie.jpg",
            tags=["vegetarian"],
            allergens=["eggs", "gluten", "milk", "nuts"],
            calories=430,
        ),
        "pie": DemoItem("Apple Pie", 549, "Desserts"),
        "cheesecake": DemoItem("New York Cheesecake", 649, "Desserts", available=False),
        # Modifier groups and options
        "temp": group("Cook temperature", 1, 1),
        "rare": option("Rare"),
        "medium_rare": option("Medium rare"),
        "medium": option("Medium"),
        "well": option("Well done"),
        "side_choice": group("Choose your side", 1, 1),
        "toppings": group("Extra toppings", 0, 5),
        "cheddar": option("Cheddar", 100, allergens=["milk"]),
        "bacon": option("Bacon", 200, calories=90),
        "avocado": option("Avocado", 150),
        "jalapenos": option("Jalapeños", 50),
        "egg": option("Fried egg", 150),
        "ketchup": option("Ketchup"),
        "mustard": option("Mustard"),
        "mayo": option("Mayo"),
        "dressing": group("Dressing", 1, 1),
        "ranch": option("Ranch", allergens=["eggs", "milk"]),
        "vinaigrette": option("Balsamic vinaigrette"),
        "blue_cheese": option("Blue cheese", 50, allergens=["milk"]),
        "crumble": group("Blue cheese crumble", 0, 1),
        "light_crumble": option("Light crumble"),
        "extra_crumble": option("Extra crumble", 75),
        "protein": group("Add protein", 0, 1),
        "grilled_chicken": option("Grilled chicken", 400),
        "shrimp": option("Shrimp", 500),
        "size": group("Size", 1, 1),
        "small": option("Small"),
        "regular": option("Regular", 50),
        "large": option("Large", 100),
        "flavor": group("Flavor", 1, 1),
        "vanilla": option("Vanilla"),
        "chocolate": option("Chocolate"),
        "strawberry": option("Strawberry"),
        "ice_cream": option("Scoop of vanilla ice cream", 200, allergens=["milk"]),
        # Breakfast, 07:00 to 11:00 New York time
        "pancakes": DemoItem(
            "Buttermilk Pancakes",
            899,
            "Breakfast",
            "Three pancakes, maple syrup.",
            schedule=BREAKFAST_HOURS,
            image_url=IMAGES + "pancakes.jpg",
            tags=["vegetarian"],
            allergens=["eggs", "gluten", "milk"],
            calories=650,
        ),
        "breakfast_burger": DemoItem(
            "Breakfast Burger",
            1199,
            "Breakfast",
            "Beef patty, fried egg, hash brown.",
            schedule=BREAKFAST_HOURS,
            allergens=["eggs", "gluten"],
            calories=910,
        ),
        "oatmeal": DemoItem(
            "Oatmeal Bowl",
            599,
            "Breakfast",
            "Oats, berries, oat milk.",
            schedule=BREAKFAST_HOURS,
            tags=["vegan", "dairy_free"],
            allergens=["gluten"],
            calories=380,
        ),
    },
    modifiers={
        "classic": ["temp", "side_choice", "toppings", "ketchup", "mustard"],
        "cheese": ["temp", "side_choice", "toppings", "ketchup", "mustard"],
        "bbq": ["temp", "side_choice", "ketchup"],
        "veggie": ["side_choice", "toppings", "ketchup", "mayo"],
        "chicken": ["side_choice", "mayo"],
        "kids": ["side_choice", "ketchup"],
        "fries": ["ketchup", "mayo"],
        "sweet_fries": ["ketchup", "mayo"],
        "rings": ["ketchup"],
        "side_salad": ["dressing"],
        "garden": ["dressing", "protein", OfferedAs("bacon", price=150)],
        "caesar": ["protein"],
        "cola": ["size"],
        "diet_cola": ["size"],
        "lemonade": ["size"],
        "shake": ["flavor"],
        "brownie": ["ice_cream"],
        "pie": ["ice_cream"],
        "temp": ["rare", "medium_rare", "medium", "well"],
        "side_choice": [OfferedAs("fries", is_default=True), "sweet_fries", "rings", "side_salad"],
        "breakfast_burger": ["side_choice"],
        "toppings": ["cheddar", "bacon", "avocado", "jalapenos", "egg"],
        "dressing": [OfferedAs("ranch", is_default=True), "vinaigrette", "blue_cheese"],
        "blue_cheese": ["crumble"],
        "crumble": ["light_crumble", "extra_crumble"],
        "protein": ["grilled_chicken", "shrimp"],
        "size": ["small", "regular", "large"],
        "flavor": ["vanilla", "chocolate", "strawberry"],
    },
)

TRATTORIA = DemoMenu(
    name="Trattoria Presto",
    currency="EUR",
    timezone="Europe/Rome",
    items={
        "margherita": DemoItem("Pizza Margherita", 950, "Pizze", "Tomato, fior di latte, basil."),
        "diavola": DemoItem("Pizza Diavola", 1150, "Pizze", "Spicy salami, chili oil."),
        "funghi": DemoItem("Pizza ai Funghi", 1100, "Pizze", "Mushrooms, mozzarella."),
        "carbonara": DemoItem("Spaghetti Carbonara", 1250, "Pasta"),
        "lasagna": DemoItem("Lasagna al Forno", 1300, "Pasta"),
        "tiramisu": DemoItem("Tiramisù", 650, "Dolci"),
        "espresso": DemoItem("Espresso", 180, "Bevande"),
        "crust": group("Crust", 1, 1),
        "classic_crust": option("Classic crust"),
        "gluten_free": option("Gluten-free crust", 200),
        "extra": group("Extra toppings", 0, 4),
        "burrata": option("Burrata", 300),
        "nduja": option("'Nduja", 250),
        "olives": option("Olives", 100),
        "parmesan": option("Extra parmigiano", 100),
    },
    modifiers={
        "margherita": ["crust", "extra"],
        "diavola": ["crust", "extra"],
        "funghi": ["crust", "extra"],
        "carbonara": ["parmesan"],
        "lasagna": ["parmesan"],
        "crust": ["classic_crust", "gluten_free"],
        "extra": ["burrata", "nduja", "olives"],
    },
)

SUSHI = DemoMenu(
    name="Sakura Sushi",
    currency="JPY",
    timezone="Asia/Tokyo",
    items={
        "salmon_nigiri": DemoItem("Salmon Nigiri", 400, "Nigiri"),
        "tuna_nigiri": DemoItem("Tuna Nigiri", 450, "Nigiri"),
        "california": DemoItem("California Roll", 900, "Rolls"),
        "dragon": DemoItem("Dragon Roll", 1400, "Rolls"),
        "miso": DemoItem("Miso Soup", 300, "Soups"),
        "green_tea": DemoItem("Green Tea", 250, "Drinks"),
        "rice": group("Rice", 1, 1),
        "white_rice": option("White rice"),
        "brown_rice": option("Brown rice", 100),
        "wasabi": option("Extra wasabi"),
        "ginger": option("Pickled ginger"),
    },
    modifiers={
        "salmon_nigiri": ["wasabi", "ginger"],
        "tuna_nigiri": ["wasabi", "ginger"],
        "california": ["rice", "wasabi", "ginger"],
        "dragon": ["rice", "wasabi", "ginger"],
        "rice": ["white_rice", "brown_rice"],
    },
)

DEMO_MENUS = (BURGER_BAR, TRATTORIA, SUSHI)


def load_demo(session: Session) -> list[Restaurant]:
    """Insert the demo restaurants and menus; the caller commits."""
    return [insert_demo_menu(session, menu) for menu in DEMO_MENUS]


def insert_demo_menu(session: Session, menu: DemoMenu) -> Restaurant:
    """Insert one demo restaurant with its items and modifier links."""
    restaurant = Restaurant(name=menu.name, currency=menu.currency, timezone=menu.timezone)
    session.add(restaurant)
    session.flush()
    items = {
        key: Item(
            restaurant_id=restaurant.id,
            position=position,
            **{name: getattr(spec, name) for name in ITEM_FIELDS},
        )
        for position, (key, spec) in enumerate(menu.items.items())
    }
    session.add_all(items.values())
    session.flush()
    insert_links(
        session,
        [
            row
            for parent, children in menu.modifiers.items()
            for row in link_rows(
                restaurant.id, items[parent].id, (_link(items, child) for child in children)
            )
        ],
    )
    return restaurant


def _link(items: dict[str, Item], child: str | OfferedAs) -> ModifierLink:
    """A demo modifier's link row terms."""
    if isinstance(child, str):
        return ModifierLink(items[child].id)
    return ModifierLink(items[child.key].id, child.price, child.is_default)


# A menu as compared with the demo: restaurant fields, items in menu order (fields and
# position) and links as (parent, modifier, position, price, default) by menu index.
MenuContent = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def beyond_demo(engine: Engine) -> str | None:
    """What the database holds besides the demo menus as `load_demo` writes them, as a
    phrase; None when it holds nothing else (no tables, empty ones, or the unchanged demo),
    so `--reset-db` would lose nothing it does not load again."""
    tables = set(sa.inspect(engine).get_table_names())
    if not {"restaurant", "api_key"} & tables:
        return None
    try:
        with Session(engine) as session:
            keys = session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) or 0
            found = [_stored_content(session, row) for row in _restaurants(session)]
    except SQLAlchemyError:
        return "tables this version of presto cannot read"
    if keys:
        return f"{keys} API key{'' if keys == 1 else 's'}"
    expected = [_demo_content(menu) for menu in DEMO_MENUS]
    if not found or found == expected:
        return None
    demo_names = {menu.name for menu in DEMO_MENUS}
    others = sum(1 for content in found if content[0][0] not in demo_names)
    if others or len(found) > len(expected):
        return f"{len(found)} restaurants, not only the demo's"
    return "demo menus changed since they were loaded"


def _restaurants(session: Session) -> list[Restaurant]:
    return list(session.scalars(sa.select(Restaurant).order_by(Restaurant.id)))


def _stored_content(session: Session, restaurant: Restaurant) -> MenuContent:
    items = session.scalars(
        sa.select(Item).where(Item.restaurant_id == restaurant.id).order_by(Item.position, Item.id)
    ).all()
    index = {item.id: number for number, item in enumerate(items)}
    links = session.execute(
        sa.select(
            item_modifier.c.item_id,
            item_modifier.c.modifier_id,
            item_modifier.c.position,
            item_modifier.c.price,
            item_modifier.c.is_default,
        ).where(item_modifier.c.restaurant_id == restaurant.id)
    ).all()
    return (
        (restaurant.name, restaurant.currency, restaurant.timezone),
        [(*(getattr(item, name) for name in ITEM_FIELDS), item.position) for item in items],
        sorted(
            (index[parent], index[child], position, price, bool(is_default))
            for parent, child, position, price, is_default in links
        ),
    )


def _demo_content(menu: DemoMenu) -> MenuContent:
    index = {key: number for number, key in enumerate(menu.items)}
    return (
        (menu.name, menu.currency, menu.timezone),
        [
            (*(getattr(spec, name) for name in ITEM_FIELDS), position)
            for position, spec in enumerate(menu.items.values())
        ],
        sorted(
            (index[parent], index[link_key], position, link.price, link.is_default)
            for parent, children in menu.modifiers.items()
            for position, child in enumerate(children)
            for link_key, link in ((_key(child), _terms(child)),)
        ),
    )


def _key(child: str | OfferedAs) -> str:
    return child if isinstance(child, str) else child.key


def _terms(child: str | OfferedAs) -> OfferedAs:
    return OfferedAs(child) if isinstance(child, str) else child
