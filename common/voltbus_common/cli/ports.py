"""Fixed ports for `voltbus up`: anything configured for 1883 or 8080 (Home Assistant, a browser
bookmark, the docs' curl lines) must keep working, so a port is never silently replaced."""

from __future__ import annotations

import socket

from voltbus_common.devbroker import free_port


class PortInUse(Exception):
    """A port `voltbus up` needs is taken; the message names it, its user and the way out."""


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on host:port now.

    SO_REUSEADDR, as every server of the stack sets it: a port whose last connections are still in
    TIME-WAIT (a second `scripts/up` within a minute) is free; only a listening socket takes it.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def claim(port: int, what: str, option: str, host: str = "127.0.0.1", hint: str = "") -> int:
    """port, or PortInUse naming it, what needs it and the option that chooses another."""
    if is_free(port, host):
        return port
    extra = f" {hint}" if hint else ""
    raise PortInUse(
        f"port {port} ({what}) on {host} is already in use by another program: stop it, or "
        f"choose another port with {option}.{extra} (`ss -ltnp 'sport = :{port}'` shows who "
        f"holds it; another `voltbus up` still running?)")


def preferred_or_free(port: int, host: str = "127.0.0.1") -> tuple[int, bool]:
    """(port, True) if free, else (a free port, False): for ports only the stack itself uses."""
    if is_free(port, host):
        return port, True
    return free_port(), False
