"""voltbus."""

import importlib.util
import sys

# httpx imports its command-line client (rich, pygments, click: about 6.5 MB per process) at
# `import httpx` whenever those happen to be installed, and no voltbus service runs that client.
# Marked absent, httpx takes its own `except ImportError` path and its HTTP client is unchanged.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# httpcore runs `import sniffio` inside every lock, event and shield it sets up, four or more
# times per HTTP request, and sniffio is no dependency of httpx or anyio any more: where it is not
# installed each of those failed imports searches every sys.path entry again (a fifth of an idle
# recorder's CPU, one InfluxDB write a second). Marked absent, the import fails at once with the
# same ModuleNotFoundError and httpcore and anyio take their asyncio path as before.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]
