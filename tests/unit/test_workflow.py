"""The state machine as data: every pair of states, every actor."""

from __future__ import annotations

import itertools

import pytest

from backend.domain import workflow
from backend.domain.errors import ErrorKind
from backend.domain.orders import IllegalTransition
from backend.domain.orders import OrderStatus as S
from backend.domain.workflow import Actor, ActorNotAllowed

# The diagram of PRODUCT.md, written out independently of workflow.TRANSITIONS.
EXPECTED = {
    (S.PENDING, S.VALIDATED): {Actor.SYSTEM},
    (S.PENDING, S.REJECTED): {Actor.SYSTEM, Actor.ADMIN},
    (S.PENDING, S.CANCELLED): {Actor.OWNER, Actor.ADMIN},
    (S.VALIDATED, S.APPROVED): {Actor.ADMIN, Actor.SYSTEM},
    (S.VALIDATED, S.REJECTED): {Actor.ADMIN},
    (S.VALIDATED, S.CANCELLED): {Actor.OWNER, Actor.ADMIN},
    (S.APPROVED, S.PROCESSING): {Actor.SYSTEM},
    (S.PROCESSING, S.COMPLETED): {Actor.SYSTEM},
}
ALL_PAIRS = list(itertools.product(S, S))


def test_the_data_is_the_diagram() -> None:
    actual = {(t.source, t.target): set(t.actors) for t in workflow.TRANSITIONS}
    assert actual == EXPECTED


def test_final_states_and_the_initial_state() -> None:
    assert {S.REJECTED, S.CANCELLED, S.COMPLETED} == workflow.FINAL_STATES
    assert workflow.INITIAL is S.PENDING
    assert set(workflow.EDITABLE_STATES) == {S.PENDING, S.VALIDATED}


def test_stock_is_released_exactly_on_cancel_and_reject() -> None:
    releasing = {(t.source, t.target) for t in workflow.TRANSITIONS if t.releases_stock}
    assert releasing == {
        (S.PENDING, S.REJECTED),
        (S.PENDING, S.CANCELLED),
        (S.VALIDATED, S.REJECTED),
        (S.VALIDATED, S.CANCELLED),
    }


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=lambda s: str(s))
def test_every_pair_is_allowed_or_a_conflict_naming_both(source: S, target: S) -> None:
    allowed = EXPECTED.get((source, target))
    for actor in Actor:
        if allowed is None:
            with pytest.raises(IllegalTransition) as info:
                workflow.require(source, target, actor)
            error = info.value
            assert error.kind is ErrorKind.CONFLICT
            assert str(source) in error.detail and str(target) in error.detail
            assert error.extra == {"from_status": str(source), "to_status": str(target)}
        elif actor in allowed:
            assert workflow.require(source, target, actor).target is target
        else:
            with pytest.raises(ActorNotAllowed) as denied:
                workflow.require(source, target, actor)
            assert denied.value.kind is ErrorKind.FORBIDDEN


def test_targets_from_follow_the_table() -> None:
    for state in S:
        assert workflow.targets_from(state) == {t for (s, t) in EXPECTED if s is state}


def test_a_batch_move_is_every_system_edge_into_the_target_and_never_gives_stock_back() -> None:
    assert workflow.batch_move(S.APPROVED) == workflow.BatchMove(
        (S.VALIDATED,), S.APPROVED, Actor.SYSTEM
    )
    assert workflow.batch_move(S.PROCESSING).sources == (S.APPROVED,)
    assert workflow.batch_move(S.COMPLETED).sources == (S.PROCESSING,)
    with pytest.raises(ValueError, match="gives stock back"):
        workflow.batch_move(S.REJECTED)  # the system's rejection gives stock back
    with pytest.raises(ValueError, match="never moves"):
        workflow.batch_move(S.PENDING)
    with pytest.raises(ValueError, match="never moves"):
        workflow.batch_move(S.PROCESSING, Actor.OWNER)
