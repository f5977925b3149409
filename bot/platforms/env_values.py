"""Reading list values of the platforms' settings the way people write them in .env."""

from __future__ import annotations


def split_list(value: object) -> object:
    """ "123, 456" (or "123 456", or "[123, 456]") as a list; pydantic then checks each
    item. A JSON list reads less naturally in an env file."""
    if isinstance(value, str):
        return [part for part in value.strip("[] ").replace(",", " ").split() if part]
    if isinstance(value, int):
        return [value]
    return value
