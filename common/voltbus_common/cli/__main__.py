"""`python -m voltbus_common.cli` is the `voltbus` command."""

from voltbus_common.cli import app

app(prog_name="voltbus")
