"""A workflow context: declared, typed requirements checked on entry, and a history.

Subclass `WorkflowContext`, declare what the workflow needs in
``define_requirements``, and use it as a context manager::

    class OrderWorkflow(WorkflowContext):
        def define_requirements(self):
            self.require_value("customer_id", str)
            self.require_dict("order_data", OrderData)     # a dataclass or a pydantic model
            self.require_model("order", Order, created_in_state="pending")

    with OrderWorkflow(orders, customer_id="C-1", order_data={...}) as workflow:
        workflow.transition_to("pending", {"amount": 99.99})   # creates the row
        workflow.transition_to("processing")
        print(workflow.get_history_summary())

Every unmet requirement is listed at once, in one `RequirementError`, before
anything is written.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import RequirementError
from ._machines import RowMachines, RowResult


@dataclass(frozen=True)
class _Requirement:
    kind: str  # value, dict, model
    name: str
    expected: Any
    required: bool = True
    created_in_state: str | None = None


def _is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and hasattr(schema, "model_validate")


def _validate_dataclass(schema: type, value: Mapping[str, Any]) -> tuple[Any, list[str]]:
    hints = typing.get_type_hints(schema)
    problems = []
    names = {f.name for f in dataclasses.fields(schema)}
    for unknown in sorted(set(value) - names):
        problems.append(f"unexpected field {unknown!r}")
    for field_ in dataclasses.fields(schema):
        if field_.name not in value:
            if (
                field_.default is dataclasses.MISSING
                and field_.default_factory is dataclasses.MISSING
            ):
                problems.append(f"missing field {field_.name!r}")
            continue
        expected = hints.get(field_.name)
        given = value[field_.name]
        widened = expected is float and isinstance(given, int)  # as Python's typing allows
        if isinstance(expected, type) and not isinstance(given, expected) and not widened:
            problems.append(
                f"field {field_.name!r} must be {expected.__name__}, got "
                f"{value[field_.name]!r} ({type(value[field_.name]).__name__})"
            )
    if problems:
        return None, problems
    try:
        return schema(**value), []
    except (TypeError, ValueError) as exc:  # __post_init__ validation
        return None, [str(exc)]


def _pydantic_problems(exc: Exception) -> list[str]:
    """One line per invalid field of a pydantic ``ValidationError``, worded like
    the dataclass checks (pydantic's own text spreads each over three lines)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [str(exc)]
    problems = []
    for error in errors(include_url=False):
        where = ".".join(map(str, error.get("loc", ()))) or "(the whole dict)"
        if error.get("type") == "missing":
            problems.append(f"missing field {where!r}")
        else:
            problems.append(f"field {where!r}: {error['msg']} (got {error.get('input')!r})")
    return problems


class WorkflowContext:
    """Declared, typed requirements checked on entry, plus a history summary.

    Args:
        machines: the `RowMachines` the workflow moves.
        **values: the workflow's inputs, checked against its requirements.
    """

    def __init__(self, machines: RowMachines, /, **values: Any) -> None:
        self.machines = machines
        self.values: dict[str, Any] = dict(values)
        self.key: Any = None
        self.results: list[RowResult] = []
        self._requirements: list[_Requirement] = []

    # -- declaring -----------------------------------------------------------------------

    def define_requirements(self) -> None:
        """Declare the requirements; override this in a subclass."""

    def require_value(self, name: str, expected: type, *, required: bool = True) -> None:
        """A value of type ``expected``."""
        self._requirements.append(_Requirement("value", name, expected, required))

    def require_dict(self, name: str, schema: type, *, required: bool = True) -> None:
        """A dict valid against ``schema``: a dataclass, or a pydantic model if
        pydantic is installed. The validated object replaces the dict."""
        if not (dataclasses.is_dataclass(schema) or _is_pydantic_model(schema)):
            raise TypeError(
                f"require_dict({name!r}) needs a dataclass or a pydantic model, got {schema!r}"
            )
        self._requirements.append(_Requirement("dict", name, schema, required))

    def require_model(
        self, name: str, model: type, *, created_in_state: str | None = None, required: bool = False
    ) -> None:
        """A row of ``model``: given as an instance, or created by the workflow when
        it enters ``created_in_state`` (its key is then stored under ``name``)."""
        if created_in_state is not None and created_in_state not in self.machines.spec.states:
            raise ValueError(
                f"require_model({name!r}): {created_in_state!r} is not a state of the machine"
            )
        self._requirements.append(_Requirement("model", name, model, required, created_in_state))

    # -- checking ------------------------------------------------------------------------

    def check(self) -> None:
        """Check every requirement; raise one `RequirementError` listing all problems."""
        problems: list[str] = []
        for req in self._requirements:
            present = req.name in self.values and self.values[req.name] is not None
            if not present:
                if req.required:
                    problems.append(f"{req.name!r} is required")
                continue
            value = self.values[req.name]
            if req.kind == "value" and not isinstance(value, req.expected):
                problems.append(
                    f"{req.name!r} must be {req.expected.__name__}, got {value!r} "
                    f"({type(value).__name__})"
                )
            elif req.kind == "model" and not isinstance(value, req.expected):
                problems.append(
                    f"{req.name!r} must be a {req.expected.__name__} instance, got "
                    f"{type(value).__name__}"
                )
            elif req.kind == "dict":
                problems += self._check_dict(req, value)
        if problems:
            raise RequirementError(type(self).__name__, problems)

    def _check_dict(self, req: _Requirement, value: Any) -> list[str]:
        schema = req.expected
        if not isinstance(value, Mapping):
            if isinstance(value, schema):
                return []
            return [
                f"{req.name!r} must be a dict for {schema.__name__}, got {type(value).__name__}"
            ]
        if _is_pydantic_model(schema):
            try:
                self.values[req.name] = schema.model_validate(dict(value))
            except Exception as exc:  # pydantic's ValidationError
                return [f"{req.name!r}: {p}" for p in _pydantic_problems(exc)]
            return []
        validated, problems = _validate_dataclass(schema, value)
        if problems:
            return [f"{req.name!r}: {p}" for p in problems]
        self.values[req.name] = validated
        return []

    def __enter__(self) -> WorkflowContext:
        self._requirements.clear()
        self.define_requirements()
        self.check()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # -- moving ---------------------------------------------------------------------------

    def transition_to(self, target: str, data: Mapping[str, Any] | None = None) -> RowResult:
        """Move the workflow's row to ``target``.

        The first move into the initial state creates the row (with ``data`` as
        its columns); later moves transition it, reading its state from the
        database each time.
        """
        machines = self.machines
        if self.key is None:
            if target != machines.spec.initial:
                raise ValueError(
                    f"the workflow has no row yet: its first move must be to the "
                    f"initial state {machines.spec.initial!r}, not {target!r}"
                )
            result = machines.create(data)
            self.key = result.key
            for req in self._requirements:
                if req.kind == "model" and req.created_in_state == target:
                    self.values[req.name] = result.key
        else:
            result = machines.transition(self.key, target, data)
        self.results.append(result)
        return result

    def get_history_summary(self) -> str:
        """One line per committed move, oldest first."""
        lines = [f"workflow {type(self).__name__} on {self.machines.binding.name}[{self.key!r}]:"]
        previous = None
        for number, result in enumerate(self.results, 1):
            source = "(new)" if result.record is None else result.record.from_state
            keys = sorted(result.record.payload_keys) if result.record else []
            via = f" by {result.record.event!r}" if result.record and result.record.event else ""
            lines.append(
                f"  {number}. {source} -> {result.state}{via}"
                + (f" with {', '.join(keys)}" if keys else "")
            )
            previous = result
        if previous is not None:
            lines.append(f"  now: {previous.state} (version {previous.version})")
        return "\n".join(lines)
