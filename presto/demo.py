"""The demo menus that `--reset-db` loads: three restaurants, nested and shared modifiers.

Each menu is written as items keyed by a short name, then the modifier links by those
names. Prices are integer minor units of the restaurant's currency (cents, or yen).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from presto.storage.links import insert_links, link_rows
from presto.storage.models import ITEM_FIELDS, Item, Restaurant


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
    modifiers: dict[str, list[str]] = field(default_factory=dict)


BURGER_BAR = DemoMenu(
    name="Presto Burger Bar",
    currency="USD",
    items={
        # Burgers
        "classic": DemoItem("Classic Burger", 1299, "Burgers", "Beef patty, lettuce, tomato."),
        "cheese": DemoItem("Cheeseburger", 1399, "Burgers", "Classic with aged cheddar."),
        "bbq": DemoItem("Bacon BBQ Burger", 1599, "Burgers", "Bacon, onion rings, BBQ sauce."),
        "veggie": DemoItem("Veggie Burger", 1299, "Burgers", "Black bean patty, avocado."),
        "chicken": DemoItem("Crispy Chicken Sandwich", 1349, "Burgers", "Buttermilk fried."),
        "kids": DemoItem("Kids Burger", 799, "Burgers", "Smaller patty, plain."),
        # Sides
        "fries": DemoItem("Fries", 399, "Sides", "Hand-cut, skin on."),
        "sweet_fries": DemoItem("Sweet Potato Fries", 499, "Sides"),
        "rings": DemoItem("Onion Rings", 499, "Sides", "Beer-battered."),
        "side_salad": DemoItem("Side Salad", 450, "Sides", "Mixed greens, cucumber, tomato."),
        # Salads
        "caesar": DemoItem("Caesar Salad", 1099, "Salads", "Romaine, parmesan, croutons."),
        "garden": DemoItem("Garden Salad", 899, "Salads", "Seasonal vegetables."),
        # Drinks
        "cola": DemoItem("Cola", 299, "Drinks"),
        "diet_cola": DemoItem("Diet Cola", 299, "Drinks"),
        "lemonade": DemoItem("Fresh Lemonade", 349, "Drinks"),
        "shake": DemoItem("Milkshake", 599, "Drinks", "Hand-spun."),
        "beer": DemoItem("Craft Beer", 699, "Drinks", "Ask for today's tap."),
        # Desserts
        "brownie": DemoItem("Chocolate Brownie", 599, "Desserts"),
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
        "cheddar": option("Cheddar", 100),
        "bacon": option("Bacon", 200),
        "avocado": option("Avocado", 150),
        "jalapenos": option("Jalapeños", 50),
        "egg": option("Fried egg", 150),
        "ketchup": option("Ketchup"),
        "mustard": option("Mustard"),
        "mayo": option("Mayo"),
        "dressing": group("Dressing", 1, 1),
        "ranch": option("Ranch"),
        "vinaigrette": option("Balsamic vinaigrette"),
        "blue_cheese": option("Blue cheese", 50),
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
        "ice_cream": option("Scoop of vanilla ice cream", 200),
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
        "garden": ["dressing", "protein"],
        "caesar": ["protein"],
        "cola": ["size"],
        "diet_cola": ["size"],
        "lemonade": ["size"],
        "shake": ["flavor"],
        "brownie": ["ice_cream"],
        "pie": ["ice_cream"],
        "temp": ["rare", "medium_rare", "medium", "well"],
        "side_choice": ["fries", "sweet_fries", "rings", "side_salad"],
        "toppings": ["cheddar", "bacon", "avocado", "jalapenos", "egg"],
        "dressing": ["ranch", "vinaigrette", "blue_cheese"],
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
    restaurant = Restaurant(name=menu.name, currency=menu.currency)
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
            for row in link_rows(restaurant.id, items[parent].id, (items[c].id for c in children))
        ],
    )
    return restaurant
