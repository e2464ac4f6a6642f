"""LED colour names and #rrggbb, as the LED_SET command spells them."""

from __future__ import annotations

from voltbus_hardware.drivers.base import Rgb

NAMED: dict[str, Rgb] = {
    "off": Rgb(0, 0, 0), "black": Rgb(0, 0, 0), "white": Rgb(255, 255, 255),
    "red": Rgb(255, 0, 0), "green": Rgb(0, 255, 0), "blue": Rgb(0, 0, 255),
    "yellow": Rgb(255, 200, 0), "orange": Rgb(255, 100, 0), "cyan": Rgb(0, 255, 255),
    "magenta": Rgb(255, 0, 255), "purple": Rgb(128, 0, 255), "pink": Rgb(255, 80, 160),
}


def parse_color(text: str) -> Rgb:
    """An Rgb from a colour name or #rrggbb; ValueError names the choices."""
    if text.startswith("#") and len(text) == 7:
        try:
            return Rgb(int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
        except ValueError:
            pass
    found = NAMED.get(text.lower())
    if found is None:
        raise ValueError(f"unknown color {text!r}: use #rrggbb or one of {', '.join(NAMED)}")
    return found
