"""The order state machine, as data: states, allowed transitions and who may trigger each.

```
pending ──validation ok──▶ validated ──approve──▶ approved ──▶ processing ──▶ completed
   │                          │
   ├─validation fails/reject─▶ rejected     (stock released)
   └─────────cancel──────────▶ cancelled ◀──cancel── validated   (stock released)
```
Everything else (including any move out of a final state) is illegal.

`batch_move(target)` is the rule a Beat job moves a whole batch by: the repository applies
it set-based (one statement on PostgreSQL) instead of one compare-and-set per order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backend.domain.errors import PermissionDenied
from backend.domain.orders import IllegalTransition, OrderStatus

S = OrderStatus


class Actor(StrEnum):
    OWNER = "owner"  # the customer who placed the order
    ADMIN = "admin"
    SYSTEM = "system"  # validation task, Beat jobs


@dataclass(frozen=True, slots=True)
class Transition:
    source: OrderStatus
    target: OrderStatus
    actors: frozenset[Actor]
    releases_stock: bool = False


def _t(source: S, target: S, *actors: Actor, releases_stock: bool = False) -> Transition:
    return Transition(source, target, frozenset(actors), releases_stock)


INITIAL = S.PENDING
TRANSITIONS: tuple[Transition, ...] = (
    _t(S.PENDING, S.VALIDATED, Actor.SYSTEM),
    _t(S.PENDING, S.REJECTED, Actor.SYSTEM, Actor.ADMIN, releases_stock=True),
    _t(S.PENDING, S.CANCELLED, Actor.OWNER, Actor.ADMIN, releases_stock=True),
    _t(S.VALIDATED, S.APPROVED, Actor.ADMIN, Actor.SYSTEM),
    _t(S.VALIDATED, S.REJECTED, Actor.ADMIN, releases_stock=True),
    _t(S.VALIDATED, S.CANCELLED, Actor.OWNER, Actor.ADMIN, releases_stock=True),
    _t(S.APPROVED, S.PROCESSING, Actor.SYSTEM),
    _t(S.PROCESSING, S.COMPLETED, Actor.SYSTEM),
)
_BY_EDGE = {(t.source, t.target): t for t in TRANSITIONS}

FINAL_STATES = frozenset(s for s in S if not any(t.source is s for t in TRANSITIONS))
# Where the customer may still change shipping address and note.
EDITABLE_STATES = (S.PENDING, S.VALIDATED)


class ActorNotAllowed(PermissionDenied):
    slug = "forbidden"
    title = "Forbidden"

    def __init__(self, transition: Transition, actor: Actor) -> None:
        allowed = ", ".join(sorted(transition.actors))
        super().__init__(
            f"Moving an order from '{transition.source}' to '{transition.target}' is for "
            f"{allowed}, not {actor}."
        )


def transition_for(source: OrderStatus, target: OrderStatus) -> Transition | None:
    return _BY_EDGE.get((source, target))


def targets_from(source: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(t.target for t in TRANSITIONS if t.source is source)


def require(source: OrderStatus, target: OrderStatus, actor: Actor) -> Transition:
    """The transition, or `IllegalTransition` (409) / `ActorNotAllowed` (403)."""
    transition = transition_for(source, target)
    if transition is None:
        raise IllegalTransition(source, target)
    if actor not in transition.actors:
        raise ActorNotAllowed(transition, actor)
    return transition


@dataclass(frozen=True, slots=True)
class BatchMove:
    """Every order in one of `sources` goes to `target`, by `actor`, and gives no stock
    back: what a repository may apply to a whole claimed batch at once."""

    sources: tuple[OrderStatus, ...]
    target: OrderStatus
    actor: Actor


def batch_move(target: OrderStatus, actor: Actor = Actor.SYSTEM) -> BatchMove:
    """The rule for moving orders to `target` in bulk: from every status `actor` may move
    them from. Edges that give stock back are refused (`ValueError`): they move one by one,
    with the products locked first."""
    edges = [t for t in TRANSITIONS if t.target is target and actor in t.actors]
    if not edges:
        raise ValueError(f"{actor} never moves an order to {target}")
    if any(t.releases_stock for t in edges):
        raise ValueError(f"a move to {target} gives stock back: move one by one")
    return BatchMove(tuple(t.source for t in edges), target, actor)
