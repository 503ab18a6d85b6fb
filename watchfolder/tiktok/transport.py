"""Proxy and trust settings from the environment, the same for the chunk PUTs (http.client) as requests
applies to the JSON calls.

- Proxy: ``https_proxy``/``HTTPS_PROXY`` for https URLs, ``http_proxy``/``HTTP_PROXY`` for http ones,
  ``all_proxy``/``ALL_PROXY`` for either, skipped for hosts matched by ``no_proxy``/``NO_PROXY``. Chunks go
  through the proxy in a CONNECT tunnel, so TLS stays end to end and plain-HTTP bodies still go out with
  ``sendfile``.
- Trust: ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then ``SSL_CERT_FILE`` name a CA bundle to trust
  instead of the defaults (a TLS-inspecting proxy's CA, say). requests itself ignores ``SSL_CERT_FILE``;
  :func:`session` makes it follow it too, so both paths trust the same roots.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import requests

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@dataclass(frozen=True)
class Proxy:
    """Where to open the tunnel, and the Proxy-Authorization header when the proxy URL carries a user."""

    host: str
    port: int
    authorization: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}


def _variable(env: Mapping[str, str], name: str) -> str:
    return (env.get(name.lower()) or env.get(name.upper()) or "").strip()


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> Proxy | None:
    """Given a URL, return the proxy the environment names for it, or None (none set, or no_proxy matches)."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    value = _variable(env, f"{parts.scheme}_proxy") or _variable(env, "all_proxy")
    if not value or not parts.hostname:
        return None
    no_proxy = _variable(env, "no_proxy")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
    if no_proxy and (no_proxy == "*" or bypass(host, {"no": no_proxy})):
        return None
    proxy = urlsplit(value if "://" in value else f"http://{value}")
    if proxy.scheme not in ("http", ""):
        raise ValueError(f"only http:// proxies are supported for uploads, got a {proxy.scheme}:// proxy")
    if not proxy.hostname:
        raise ValueError("the proxy setting names no host")
    authorization = None
    if proxy.username is not None:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(proxy.hostname, proxy.port or 80, authorization)


def ca_bundle(env: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle the environment names (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE), or None."""
    env = os.environ if env is None else env
    for name in CA_VARIABLES:
        if env.get(name, "").strip():
            return env[name].strip()
    return None


def ssl_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A verifying TLS context that trusts the environment's CA bundle, else the system's roots."""
    bundle = ca_bundle(env)
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def session(env: Mapping[str, str] | None = None) -> requests.Session:
    """A requests Session that honours the proxy variables (requests does) and every CA variable above."""
    env = os.environ if env is None else env
    made = requests.Session()
    if not env.get("REQUESTS_CA_BUNDLE") and not env.get("CURL_CA_BUNDLE") and env.get("SSL_CERT_FILE"):
        made.verify = env["SSL_CERT_FILE"]
    return made
