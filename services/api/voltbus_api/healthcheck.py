"""Container healthcheck: `python -m voltbus_api.healthcheck PORT` exits 0 when /health is 200.

Speaks HTTPS when VOLTBUS_API_TLS_CERT_FILE is set (as the API does). It checks that this
container's own listener answers, so the certificate is not verified: the name is 127.0.0.1
here, and a probe that failed on an expiring certificate would restart a working API.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    """0 if the API on 127.0.0.1:PORT answers /api/v1/health with 200, else 1."""
    port = int(argv[1]) if len(argv) > 1 else int(os.environ.get("VOLTBUS_API_PORT", "8080"))
    tls = bool(os.environ.get("VOLTBUS_API_TLS_CERT_FILE"))
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as r:
            return 0 if r.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
