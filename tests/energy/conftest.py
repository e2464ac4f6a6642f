"""Fixtures of the energy tests."""

from tests.energy.price_server import price_server

__all__ = ["price_server"]
