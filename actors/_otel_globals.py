"""The application's global OpenTelemetry providers, noticed whenever they are set.

The OpenTelemetry API lets an application set its global MeterProvider and
TracerProvider once, at any time; until then, ``get_meter_provider()`` and
``get_tracer_provider()`` return the API's own proxies, whose instruments and
tracers do nothing but still cost a call per use. A runtime must cost a
message nothing while nothing is configured, so it keeps no proxy on the
message path: it takes the real provider once there is one (`_telemetry`).

Applications often configure the SDK after building their objects, and the
API calls nobody back when a provider is set. So a runtime that follows a
global provider not set yet looks again on its own timer (`_telemetry`):
every `FIRST_INTERVAL` seconds at first, then less often, up to every
`LAST_INTERVAL` seconds, while it has actors (an idle runtime looks again
when its next actor starts), until both providers are found (the API sets
each one once). A runtime made with its own providers (``Runtime(
meter_provider=..., tracer_provider=...)``), or once they are set, never looks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["api_installed", "global_meter_provider", "global_tracer_provider"]

#: How long a runtime waits before its first look, then doubled each look.
FIRST_INTERVAL = 0.05
#: The longest it waits between two looks.
LAST_INTERVAL = 2.0

_installed: list[bool] = []


def api_installed() -> bool:
    """Whether the OpenTelemetry API can be imported (looked up once)."""
    if not _installed:
        try:
            import opentelemetry.metrics
            import opentelemetry.trace  # noqa: F401
        except ImportError:
            _installed.append(False)
        else:
            _installed.append(True)
    return _installed[0]


def _configured(provider: object) -> bool:
    """Whether ``provider`` is an application's, not the API's own (a proxy or no-op)."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry.metrics", "opentelemetry.trace"))


def global_meter_provider() -> Any:
    """The application's global MeterProvider, or None while none is set
    (or the OpenTelemetry API is not installed)."""
    if not api_installed():
        return None
    from opentelemetry import metrics

    provider = metrics.get_meter_provider()
    return provider if _configured(provider) else None


def global_tracer_provider() -> Any:
    """The application's global TracerProvider, or None while none is set
    (or the OpenTelemetry API is not installed)."""
    if not api_installed():
        return None
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return provider if _configured(provider) else None
