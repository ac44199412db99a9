"""The class form: a `StateChart` subclass compiles to a `MachineSpec`.

::

    class TrafficLight(StateChart):
        green = State(initial=True)
        yellow = State()
        red = State()
        cycle = green.to(yellow) | yellow.to(red) | red.to(green)

        def on_enter_red(self, ctx):
            ...

    StateMachine(TrafficLight.spec, runtime=rt)

The spec is compiled once, when the class is created (`StateChart.__init_subclass__`),
and every definition error is raised there, as a `MachineDefinitionError`
naming the class and the culprit. Hook methods are found by name:

- ``on_enter_<state>`` / ``on_exit_<state>``: enter and exit hooks of that
  state (its attribute's name);
- ``prepare_<event>``: a pre-transition hook of that event (runs first, before
  the guards, once for each alternative tried; may return payload additions);
- ``before_<event>``: runs once the event's move is admitted, before the exit
  hooks (an exit-stage hook of that event: it may return data changes or veto);
- ``on_<event>``: the event's effect, between the exit and the enter hooks
  (every alternative without an ``on=`` of its own);
- ``after_<event>``: an after-commit hook of that event.

Every method takes the `TransitionContext`. They are bound to one instance of
the chart, made (without arguments) when the class is compiled and shared by
every machine of the spec: a machine's values belong in ``ctx.data``, not on
``self``.

How compound and parallel states will fit: a state is collected by
`ChartReader` (in `_chart_read`), which today refuses a nested chart class; with the spec's
``compound=``/``parallel=`` keywords, a nested class is a compound state whose
own states, moves and hooks are collected the same way, and the compiler
passes the parent -> children table to the spec. Nothing else changes: names
stay unique in the whole machine, as the spec requires.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._chart_events import event_of
from ._chart_hooks import chart_hooks, effect_of, hook_methods
from ._chart_read import ChartReader
from ._chart_states import State, describe_move
from ._chart_tree import HistoryState
from ._errors import MachineDefinitionError
from ._events import Event
from ._spec import MachineSpec

__all__ = ["HistoryState", "State", "StateChart"]


def _compile(cls: type[StateChart], name: str | None, history_limit: object) -> MachineSpec:
    chart = ChartReader(cls, StateChart)
    states, initial, tree = chart.check_states()
    try:
        instance = cls()
    except TypeError as exc:
        raise chart.error(
            f"cannot make the chart's instance, which its hook methods are bound to: {exc}; "
            "a chart is instantiated once, without arguments"
        ) from exc
    methods = hook_methods(chart, instance)
    effects = {(id(m.body), m.rest): m for m in methods if m.prefix == "on_"}
    befores = {m.rest for m in methods if m.prefix == "before_"}
    finals = {chart.names[id(s)] for body in chart.bodies for s in body.states.values() if s.final}
    events: list[Event] = []
    for body in chart.bodies:
        for event, moves in body.events.items():
            effect = effect_of(chart, effects, body, event)
            for move in moves:
                named = chart.event_names[event]
                events.append(event_of(chart, instance, named, move, effect, finals, body))
                if move.internal and event in befores:
                    raise chart.error(
                        f"before_{event} would not run for the internal transition "
                        f"{describe_move(move)} (an internal transition has no exit stage); "
                        f"use on_{event} for it",
                        event=event,
                    )
    timeouts: dict[str, object] = {}
    for body in chart.bodies:
        for state in body.states.values():
            if state.timeout is not None:
                timeout = state.timeout
                if isinstance(timeout, tuple) and len(timeout) == 2:  # the event by attribute
                    timeout = (timeout[0], chart.event_names.get(timeout[1], timeout[1]))
                timeouts[chart.names[id(state)]] = timeout
    try:
        return MachineSpec(
            initial,
            events=events,
            timeouts=timeouts or None,
            hooks=chart_hooks(chart, methods),
            states=states,
            history_limit=history_limit,  # type: ignore[arg-type]
            name=name,
            **tree,
        )
    except MachineDefinitionError as exc:
        raise chart.error(exc.problem, state=exc.state, event=exc.event) from exc


class StateChart:
    """A machine definition written as a class; ``Chart.spec`` is its `MachineSpec`.

    States are `State` attributes, events are attributes holding moves
    (``cycle = green.to(yellow) | yellow.to(red)``: the attribute names the
    event; several moves of one event from one state are its alternatives,
    the first whose guards pass is taken), hooks are methods named after a
    state or an event (``on_enter_red``, ``on_cycle``, ``after_cycle``...,
    see the module's documentation), each taking the `TransitionContext`.

    Class keywords: ``name=`` (the spec's name; the class's name by default,
    a subclass's own included) and ``history_limit=`` (as `MachineSpec`'s;
    a subclass keeps its base's unless it gives one). A subclass extends its base:
    it keeps the base's states, events and hooks, may add more, and overrides
    what it redefines (an event or a hook method of the same name).

    Raises:
        MachineDefinitionError: when the class is created, if the definition
            cannot work; the message names the class and the culprit.
    """

    #: The compiled definition, set when the class is created.
    spec: ClassVar[MachineSpec]
    #: the history limit a subclass inherits unless it gives its own
    _history_limit: ClassVar[int] = 100

    def __init_subclass__(
        cls, *, name: str | None = None, history_limit: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        limit = cls._history_limit if history_limit is None else history_limit
        cls._history_limit = limit
        cls.spec = _compile(cls, cls.__name__ if name is None else name, limit)
