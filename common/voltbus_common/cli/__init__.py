"""The `voltbus` command: run services, start the stack, drive the simulator, watch the bus."""

from voltbus_common.cli.main import app

__all__ = ["app"]
