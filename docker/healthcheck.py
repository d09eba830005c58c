#!/usr/bin/env python3
"""almoner-healthcheck: the image's HEALTHCHECK; exit 0 when the node answers /healthz.

The port comes from ALMONER_LISTEN, else from the node's config file (ALMONER_CONFIG or
/var/lib/almoner/node.toml), else 8000. Standard library only.
"""

from __future__ import annotations

import os
import ssl
import sys
import tomllib
import urllib.error
import urllib.request

DEFAULT_CONFIG = "/var/lib/almoner/node.toml"
WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def listen_address() -> str:
    listen = os.environ.get("ALMONER_LISTEN")
    if listen:
        return listen
    try:
        with open(os.environ.get("ALMONER_CONFIG") or DEFAULT_CONFIG, "rb") as handle:
            value = tomllib.load(handle).get("listen")
    except (OSError, tomllib.TOMLDecodeError):
        value = None
    return value if isinstance(value, str) else "0.0.0.0:8000"


def tls_context() -> ssl.SSLContext | None:
    """When the node serves HTTPS (ALMONER_TLS_CERT): a context for a loopback check, which
    presents the node's own certificate in case clients must have one (mTLS)."""
    cert = os.environ.get("ALMONER_TLS_CERT")
    if not cert:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own node on loopback: liveness, not identity
    context.load_cert_chain(cert, os.environ.get("ALMONER_TLS_KEY") or None)
    return context


def main() -> int:
    host, _, port = listen_address().rpartition(":")
    if host in WILDCARDS:
        host = "127.0.0.1"
    context = tls_context()
    url = f"{'https' if context else 'http'}://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2.5, context=context) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        print(f"{url}: HTTP {exc.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
