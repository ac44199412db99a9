"""A refused transition reaches the caller as the refusal alone, whichever thread ran it."""

from __future__ import annotations

import pytest

from stateward.actors import Runtime, StateMachine
from stateward.core import InvalidTransition

FLOW = {"pending": ["paid"], "paid": []}


@pytest.mark.parametrize("inline_calls", [True, False])
def test_a_refused_transition_has_no_internal_exception_in_its_traceback(
    inline_calls: bool,
) -> None:
    # A miss in the move table's cache once chained KeyError('paid', 'paid', None)
    # ("During handling of the above exception...") above the InvalidTransition.
    with Runtime("refusals", inline_calls=inline_calls) as runtime:
        machine = StateMachine("pending", FLOW, runtime=runtime)
        machine.transition("paid")
        for _ in range(2):  # the first refusal, and one the table has seen
            with pytest.raises(InvalidTransition) as caught:
                machine.transition("paid")
            assert caught.value.__context__ is None
            assert caught.value.__cause__ is None
        reply = machine.request_transition("pending")
        with pytest.raises(InvalidTransition) as caught:
            reply.result(5)
        assert caught.value.__context__ is None
        assert machine.current_state == "paid"
