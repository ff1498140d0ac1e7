"""presto: a REST service that serves restaurant menus from a relational database."""

__version__ = "0.1.0"
