"""Tariffs: fixed, time-of-use windows and dynamic price feeds, all as one table of price slots."""
