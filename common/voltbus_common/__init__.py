"""voltbus."""

import sys

# httpx imports its command-line client (rich, pygments, click: about 6.5 MB per process) at
# `import httpx` whenever those happen to be installed, and no voltbus service runs that client.
# Marked absent, httpx takes its own `except ImportError` path and its HTTP client is unchanged.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
