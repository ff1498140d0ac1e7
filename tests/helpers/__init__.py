"""Helpers shared by the tests: test data straight in the database, problem checks, and a
real `presto serve` process."""
