"""voltbus."""

import sys

# FastAPI checks every route's models against pydantic.v1 and imports it for that (about 1.3 MB
# and 80 ms at start); voltbus has no v1 model. Marked absent, FastAPI takes its own
# `except ImportError` path ("no v1 models"), which it has for pydantic builds without v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
