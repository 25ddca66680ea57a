"""The closure (注销) state machine of an account: one StrEnum and one transition function."""

from __future__ import annotations

from enum import StrEnum

from distnet.closure.errors import ClosureTransitionRefused


class ClosureState(StrEnum):
    active = "active"
    closing = "closing"
    """Closure accepted; the account has left the network and waits for its final payout."""
    closed = "closed"
    """Nothing left to pay; personal data is erased at ``erase_after``."""
    erased = "erased"


S = ClosureState
TRANSITIONS: frozenset[tuple[ClosureState, ClosureState]] = frozenset(
    {
        (S.active, S.closing),  # money still to pay out
        (S.active, S.closed),  # nothing to pay, or an admin terminates a violator
        (S.closing, S.closed),  # the final payout was paid
        (S.closed, S.closing),  # ... and the bank sent it back (退票): the money is owed to the owner again
        (S.closed, S.erased),  # the retention period ended
    }
)


def transition(current: str, to: ClosureState) -> ClosureState:
    if (ClosureState(current), to) not in TRANSITIONS:
        raise ClosureTransitionRefused(
            f"an account that is {current} cannot become {to.value}", extra={"state": current, "to": to.value}
        )
    return to
