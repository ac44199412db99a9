"""Context values that travel with each request to a shard.

A `contextvars.Context` cannot be pickled, so a request to a Ray shard cannot
take its sender's context along. Instead the values of the context variables
registered with `propagate_context` travel: the client reads them from the
request's captured context (`Reply.context`) when it queues the request,
and the shard sets them, in a fresh context of the request's own, before it
makes the request there: the shard's `Reply` captures that context, so the
request's hooks, guards and after-commit work see the values, whichever
worker runs them. With no registered variable set (and no trace context),
nothing extra travels.

The trace context travels too when OpenTelemetry is importable: the current
span's `SpanContext`, made the current (remote, non-recording) span on the
shard, so that spans started there join the caller's trace.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
from typing import Any

from ._errors import NotPicklable, NotPropagable
from ._link import pickled

#: The registered variables and the ``module:attr`` key each travels under
#: (replaced, never changed in place).
_registered: dict[contextvars.ContextVar[Any], str] = {}
#: On a shard: variables found by key.
_found: dict[str, contextvars.ContextVar[Any]] = {}
#: The key the trace context travels under (no variable has a ``:``-less key).
TRACE = "opentelemetry"
_MISSING: Any = object()
#: `opentelemetry.trace` once imported; False if it is not installed.
_otel: Any = None


def propagate_context(var: contextvars.ContextVar[Any]) -> contextvars.ContextVar[Any]:
    """Make ``var``'s value travel with each request to a Ray shard.

    From now on, a request sent to a `RayRuntime` shard in a context where
    ``var`` is set carries its value, and the shard sets it around the
    request: its hooks, guards and after-commit hooks there see it. The
    value must pickle (else the call raises `NotPicklable`, and nothing is
    sent). Registering the same variable again does nothing. Returns ``var``.

    Raises:
        NotPropagable: ``var`` is not a `contextvars.ContextVar` that is a
            module-level name of an imported module (the shard finds it by
            that import path, as it finds a machine's definition).
    """
    global _registered
    if not isinstance(var, contextvars.ContextVar):
        raise NotPropagable(
            f"propagate_context takes a contextvars.ContextVar, got {type(var).__qualname__}: "
            "pass the module-level ContextVar whose value should travel"
        )
    if var in _registered:
        return var
    key = _path_of(var)
    if key is None:
        raise NotPropagable(
            f"the ContextVar {var.name!r} is no module-level name of an imported module, so a "
            "Ray shard cannot find it by import path: define it at module level in a module "
            "that imports on every node, and register that object"
        )
    _registered = {**_registered, var: key}  # replaced whole: readers iterate it unlocked
    return var


def _path_of(var: contextvars.ContextVar[Any]) -> str | None:
    """``module:attr`` of a module-level name bound to ``var``, if any."""
    for module_name, module in list(sys.modules.items()):
        if module_name == "__main__" or module is None:
            continue
        try:
            names = list(vars(module).items())
        except TypeError:
            continue
        for attr, value in names:
            if value is var:
                return f"{module_name}:{attr}"
    return None


def carried(context: contextvars.Context | None) -> dict[str, Any] | None:
    """The registered values (and the trace context) set in ``context``, by
    key; None when there are none (the request then travels as it is)."""
    if context is None:
        return None
    values: dict[str, Any] | None = None
    for var, key in _registered.items():
        value = context.get(var, _MISSING)
        if value is not _MISSING:
            if values is None:
                values = {}
            values[key] = value
    trace = _trace()
    if trace:
        span = context.run(trace.get_current_span).get_span_context()
        if span.is_valid:
            if values is None:
                values = {}
            values[TRACE] = (
                span.trace_id,
                span.span_id,
                int(span.trace_flags),
                list(span.trace_state.items()),
            )
    return values


class Carried:
    """A request and the context values that travel with it."""

    __slots__ = ("request", "values")

    def __init__(self, request: Any, values: dict[str, Any]) -> None:
        self.request = request
        self.values = values

    def __reduce__(self) -> tuple[Any, ...]:
        return (Carried, (self.request, self.values))


def pickled_with(request: Any, values: dict[str, Any], where: str) -> bytes:
    """``request`` and the context ``values`` that travel with it, pickled.

    Raises:
        NotPicklable: the request cannot be pickled, or a registered context
            value cannot (the message names it); nothing is sent.
    """
    try:
        return pickled(Carried(request, values), where)
    except NotPicklable:
        pickled(request, where)  # the request itself: raises its own error
        for key, value in values.items():
            try:
                pickled(value, where)
            except NotPicklable:
                raise NotPicklable(
                    f"{where}: the value of the context variable {key.replace(':', '.')}, "
                    f"registered with propagate_context, cannot be pickled (a "
                    f"{type(value).__qualname__}), so it cannot travel to the Ray shard. Set "
                    "it to a value that pickles (plain data) around calls to a RayRuntime"
                ) from None
        raise


def send_in_context(message: Any, send: Any) -> Any:
    """``send(request, None)`` (a handle's ``_request``) for a message
    unpickled on a shard: for a `Carried` one, with its values set in a
    copy of this thread's context (the request captures that
    copy: its hooks see them, and the request id the shard set around it)."""
    if type(message) is not Carried:
        return send(message, None)
    return contextvars.copy_context().run(_set_then, message, send)


def _set_then(message: Carried, send: Any) -> Any:
    for key, value in message.values.items():
        if key == TRACE:
            _enter_trace(value)
        else:
            _variable(key).set(value)
    return send(message.request, None)


def _variable(key: str) -> contextvars.ContextVar[Any]:
    var = _found.get(key)
    if var is None:
        module_name, _, attr = key.partition(":")
        try:
            var = getattr(importlib.import_module(module_name), attr)
        except Exception as exc:
            raise NotPropagable(
                f"the context variable {module_name}.{attr} cannot be imported on the Ray "
                f"worker ({type(exc).__name__}: {exc}); deploy the module that defines it "
                "to every node"
            ) from None
        if not isinstance(var, contextvars.ContextVar):
            raise NotPropagable(
                f"{module_name}.{attr} on the Ray worker is a {type(var).__qualname__}, not "
                "a ContextVar: the worker runs another version of that module"
            )
        _found[key] = var
    return var


def _trace() -> Any:
    """`opentelemetry.trace` if installed, else False (looked up once)."""
    global _otel
    if _otel is None:
        try:  # imported by name: an optional dependency, typed or not
            _otel = importlib.import_module("opentelemetry.trace")
        except ImportError:
            _otel = False
    return _otel


def _enter_trace(value: tuple[int, int, int, list[tuple[str, str]]]) -> None:
    """Make the caller's span the current one here (remote, non-recording)."""
    trace = _trace()
    if not trace:
        return  # not installed on this worker: the trace context stops here
    otel_context = importlib.import_module("opentelemetry.context")

    trace_id, span_id, flags, state = value
    span = trace.SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=trace.TraceFlags(flags),
        trace_state=trace.TraceState(state),
    )
    otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span)))
