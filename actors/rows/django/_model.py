"""What django-fsm users expect, on a machine bound to a model's rows.

`ModelMachine` is declared on the model, next to the state field::

    class Cat(models.Model):
        state = models.IntegerField(choices=CatState.choices, default=CatState.Unknown)
        machine = ModelMachine(cat_spec, state="state", states=CatState)

It binds the machine to the model's rows (a `RowMachines` per database, made
on first use), protects the state field (assigning it directly raises
`StateFieldProtected`; ``save()`` leaves it out), adds a method per event
(``cat.rip()``), and gives each instance ``cat.machine``: its state, the
transitions available from it, ``trigger``/``transition_to``, its history.
The signals `pre_transition` and `post_transition` are sent around each move.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models.signals import class_prepared
from django.dispatch import Signal

from stateward.core import MachineBuilder, MachineSpec

from ..._context import current_runtime
from .._errors import ParallelStatesUnbindable
from .._machines import RetryPolicy, RowMachines, RowResult
from ._binding import DjangoBinding
from ._errors import BindingError, StateFieldProtected, UnsavedInstance

#: Sent before a move, in the caller's thread: ``sender`` the model class,
#: ``instance``, ``name`` (the event, or the target when the move names none),
#: ``source`` (the state the instance holds: the database may hold another, and
#: the move is decided on that one), ``target`` (None when an event decides it),
#: ``using``. A receiver that raises stops the move: nothing is written.
pre_transition = Signal()

#: Sent once a move has committed (inside the caller's ``atomic()`` block: once
#: that commits, through ``transaction.on_commit``): ``sender``, ``instance``
#: (refreshed from the database), ``name``, ``source`` (the state the move was
#: decided on, read in the transaction), ``target``, ``using``, ``result`` (the
#: `RowResult`).
post_transition = Signal()

#: An instance's ``__dict__`` entry that lets stateward itself (and Django's
#: refresh_from_db) write a protected state field.
_UNLOCKED = "_stateward_unlocked"


@contextlib.contextmanager
def _unlocked(instance: Any) -> Iterator[None]:
    instance.__dict__[_UNLOCKED] = instance.__dict__.get(_UNLOCKED, 0) + 1
    try:
        yield
    finally:
        instance.__dict__[_UNLOCKED] -= 1
        if not instance.__dict__[_UNLOCKED]:
            del instance.__dict__[_UNLOCKED]


class _ProtectedField:
    """The state field's attribute on a protected model: reads as Django's,
    refuses a direct assignment of another value once the instance is loaded."""

    def __init__(self, model: str, attname: str, machine: str, original: Any) -> None:
        self.model = model
        self.attname = attname
        self.machine = machine
        self.original = original

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        return self.original.__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        loaded = instance.__dict__
        if self.attname in loaded and not loaded.get(_UNLOCKED) and loaded[self.attname] != value:
            raise StateFieldProtected(
                self.model,
                self.attname,
                f"assigning {value!r} directly is not allowed",
                f"use a transition (instance.{self.machine}.trigger(...) or "
                f"instance.{self.machine}.transition_to(...))",
            )
        loaded[self.attname] = value


@dataclass(frozen=True)
class AvailableTransition:
    """A move the machine allows from an instance's state (guards not run).

    Attributes:
        event: the event that makes it (None for a move by target only).
        target: the state it leads to.
    """

    event: str | None
    target: str


class BoundMachine:
    """A model instance's machine: ``instance.<machine>``."""

    def __init__(self, machine: ModelMachine, instance: Any) -> None:
        self._machine = machine
        self.instance = instance

    @property
    def state(self) -> str:
        """The state the instance holds (as loaded or last moved; not re-read)."""
        binding = self._machine.binding
        value = getattr(self.instance, binding.state)
        return binding.state_of(self.instance.pk, value, self._machine.spec.states)

    def available_transitions(self) -> list[AvailableTransition]:
        """The moves allowed from the instance's state, by event then target;
        guards are not run (a guard may still veto one)."""
        spec, state = self._machine.spec, self.state
        found = []
        for target in sorted(spec.allowed_targets(state)):
            events = spec.events_between(state, target)
            found += [AvailableTransition(e, target) for e in events] or [
                AvailableTransition(None, target)
            ]
        return sorted(found, key=lambda t: (t.event is None, t.event or "", t.target))

    def trigger(
        self, event: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> RowResult:
        """Fire ``event`` on the instance's row; the instance is refreshed."""
        return self._machine._move(self.instance, None, event, data, timeout)

    def transition_to(
        self, target: str, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> RowResult:
        """Move the instance's row to ``target``; the instance is refreshed."""
        return self._machine._move(self.instance, target, None, data, timeout)

    def history(self) -> list[dict[str, Any]]:
        """The row's audit entries, oldest first."""
        self._machine._check_saved(self.instance, "history()")
        return self._machine.rows(self.instance._state.db).history(self.instance.pk)


class ModelMachine:
    """A machine bound to the rows of the model it is declared on.

    ``state``, ``version``, ``states``, ``columns`` and ``audit_model`` are as
    for `DjangoBinding`; ``mode``, ``lock``, ``lock_timeout``, ``retry``,
    ``audit`` and ``idle_timeout`` as for `RowMachines`.

    Args:
        spec: the machine (`MachineSpec` or `MachineBuilder`).
        methods: add a method per event to the model (``cat.rip()``); a name
            the model already has is a `BindingError`.
        protected: refuse direct assignments of the state field
            (`StateFieldProtected`) and leave it (and the version) out of
            ``save()`` of a loaded instance, so a stale copy never overwrites a
            transition.
        busy_timeout: SQLite: seconds to wait for the database lock.
        runtime: the runtime whose actors serialize each row in this process
            (the current one at first use by default).
    """

    def __init__(
        self,
        spec: MachineSpec | MachineBuilder,
        *,
        state: str = "status",
        version: str | None = None,
        states: Any = None,
        columns: tuple[str, ...] | None = None,
        audit_model: Any = None,
        methods: bool = True,
        protected: bool = True,
        mode: str = "pessimistic",
        lock: str = "wait",
        lock_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        audit: bool = True,
        idle_timeout: float = 30.0,
        busy_timeout: float = 5.0,
        runtime: Any = None,
    ) -> None:
        self.spec = spec.build() if isinstance(spec, MachineBuilder) else spec
        self._binding_args = {
            "state": state,
            "version": version,
            "states": states,
            "columns": columns,
            "audit_model": audit_model,
        }
        self.methods = methods
        self.protected = protected
        self.options: dict[str, Any] = {
            "mode": mode,
            "lock": lock,
            "lock_timeout": lock_timeout,
            "retry": retry,
            "audit": audit,
            "idle_timeout": idle_timeout,
        }
        self.busy_timeout = busy_timeout
        self.runtime = runtime
        self.name = ""
        self.model: Any = None
        self.binding: DjangoBinding = None  # type: ignore[assignment]
        self._rows: dict[tuple[str, int], tuple[Any, RowMachines]] = {}
        self._lock = threading.Lock()

    # -- declaring -----------------------------------------------------------------------

    def contribute_to_class(self, cls: type, name: str) -> None:
        """Django's hook: called when the model class is created."""
        self.name, self.model = name, cls
        setattr(cls, name, self)
        class_prepared.connect(self._prepared, sender=cls, weak=False)

    def _prepared(self, sender: type, **_: Any) -> None:
        self.binding = DjangoBinding(sender, **self._binding_args)
        if self.spec.has_parallel:  # refused when the model is created, not at first use
            raise ParallelStatesUnbindable(self.binding.name, self.spec)
        if self.binding.states is not None:
            # A compound state is never stored: a row holds its active leaf.
            stored = [s for s in self.spec.states if not self.spec.children(s)]
            missing = [s for s in stored if s not in self.binding.states]
            if missing:
                raise BindingError(
                    f"{sender.__name__}.{self.name}: states= gives no stored value for "
                    f"{', '.join(map(repr, missing))}"
                )
        if self.methods:
            self._add_methods(sender)
        if self.protected:
            self._protect(sender)

    def _add_methods(self, model: type) -> None:
        for event in sorted({e.name for e in self.spec.events}):
            if hasattr(model, event):
                raise BindingError(
                    f"{model.__name__}.{self.name}: the model already has an attribute "
                    f"{event!r}, so the event's method cannot be added. Rename one, or pass "
                    f"methods=False and call instance.{self.name}.trigger({event!r})"
                )
            setattr(model, event, _event_method(self.name, event))

    def _protect(self, model: Any) -> None:
        binding = self.binding
        original = model.__dict__.get(binding.state)
        setattr(
            model,
            binding.state,
            _ProtectedField(model.__name__, binding.state, self.name, original),
        )
        fixed = {binding.state} | ({binding.version} if binding.version else set())
        fixed_names = {binding.field_names[a] for a in fixed} | fixed
        refresh, save = model.refresh_from_db, model.save

        def refresh_from_db(self: Any, *args: Any, **kwargs: Any) -> None:
            with _unlocked(self):
                refresh(self, *args, **kwargs)

        def save_model(self: Any, *args: Any, **kwargs: Any) -> None:
            fields = kwargs.get("update_fields")
            if fields is not None and fixed_names & set(fields):
                raise StateFieldProtected(
                    model.__name__,
                    binding.state,
                    f"save(update_fields=...) names {sorted(fixed_names & set(fields))}",
                    "leave them out: transitions write them",
                )
            if fields is None and not self._state.adding and not args:
                skipped = fixed | self.get_deferred_fields()  # as Django skips deferred ones
                kwargs["update_fields"] = [
                    f.name
                    for f in model._meta.concrete_fields
                    if not f.primary_key and f.attname not in skipped
                ]
            save(self, *args, **kwargs)

        refresh_from_db.__doc__ = refresh.__doc__
        save_model.__doc__ = save.__doc__
        model.refresh_from_db = refresh_from_db
        model.save = save_model

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        return BoundMachine(self, instance)

    # -- the rows ------------------------------------------------------------------------

    def rows(self, using: str | None = None) -> RowMachines:
        """The `RowMachines` of this model on database ``using`` (by default
        the router's database for writes), made on first use, in the runtime of
        this moment."""
        using = using or router.db_for_write(self.model)
        runtime = self.runtime if self.runtime is not None else current_runtime()
        with self._lock:
            made = self._rows.get((using, id(runtime)))
            if made is None:
                adapter = self.binding.adapter_for(using)
                adapter.busy_timeout = self.busy_timeout
                rows = RowMachines(
                    self.spec, self.binding, adapter, runtime=runtime, **self.options
                )
                made = self._rows[(using, id(runtime))] = (runtime, rows)
        return made[1]

    def create(self, data: Mapping[str, Any] | None = None, *, using: str | None = None) -> Any:
        """Insert a row in the initial state (hooks run, the creation is
        audited, as `RowMachines.create`); return it as a model instance."""
        result = self.rows(using).create(data)
        return self.model._base_manager.using(using or router.db_for_write(self.model)).get(
            **{str(self.binding.key): result.key}
        )

    def close(self) -> None:
        """Stop the row actors of every database and runtime."""
        with self._lock:
            made, self._rows = list(self._rows.values()), {}
        for _runtime, rows in made:
            rows.close()

    # -- moving --------------------------------------------------------------------------

    def _check_saved(self, instance: Any, what: str) -> None:
        if instance._state.adding or instance.pk is None:
            raise UnsavedInstance(type(instance).__name__, what)

    def _move(
        self,
        instance: Any,
        target: str | None,
        event: str | None,
        data: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> RowResult:
        self._check_saved(instance, f"{event or target!r}")
        using = instance._state.db or router.db_for_write(self.model, instance=instance)
        rows = self.rows(using)
        key = getattr(instance, str(self.binding.key))
        name = event if event is not None else target
        source = getattr(instance, self.binding.state)
        try:
            source = self.binding.state_of(key, source, self.spec.states)
        except ValueError:
            pass  # the move reads the row and says what is wrong with it
        pre_transition.send(
            sender=self.model,
            instance=instance,
            name=name,
            source=source,
            target=target,
            using=using,
        )
        if event is not None:
            result = rows.trigger(key, event, data, timeout=timeout)
        else:
            result = rows.transition(key, str(target), data, timeout=timeout)
        instance.refresh_from_db(using=using)

        def sent() -> None:
            post_transition.send(
                sender=self.model,
                instance=instance,
                name=name,
                source=result.record.from_state if result.record else None,
                target=result.state,
                using=using,
                result=result,
            )

        if connections[using].in_atomic_block:
            transaction.on_commit(sent, using=using)
        else:
            sent()
        return result


def _event_method(machine: str, event: str) -> Callable[..., RowResult]:
    def method(
        self: Any, data: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> RowResult:
        return getattr(self, machine).trigger(event, data, timeout=timeout)  # type: ignore[no-any-return]

    method.__name__ = method.__qualname__ = event
    method.__doc__ = (
        f"Fire the event {event!r} on this instance's row (``self.{machine}.trigger"
        f"({event!r}, data)``); the instance is refreshed from the database."
    )
    return method
