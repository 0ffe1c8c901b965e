"""Order attempts as typed records: states, their moves, and loading what earlier layouts stored."""

from __future__ import annotations

import orjson
import pytest

from gateway.domain.attempts import AttemptError, AttemptState, OrderAttempt, Resolution
from gateway.services.journal import attempt_age_s, new_attempt_id


def test_an_attempt_round_trips_through_the_store_format() -> None:
    """Every field, enums and the error included, survives to_json/from_json."""
    attempt = OrderAttempt(
        id=new_attempt_id(),
        client="c",
        idempotency_key="k",
        product_id="fed",
        member="acme:eo",
        sent={"geometry": None},
        fingerprint="f",
        state=AttemptState.UNKNOWN,
        created=1.5,
        error=AttemptError("provider_timeout", "late"),
        resolution=Resolution.RECONCILED,
        checks=3,
        next_check=9.0,
        history=[(1.5, "unknown")],
    )
    assert OrderAttempt.from_json(attempt.to_json()) == attempt


def test_an_attempt_of_the_previous_layout_loads() -> None:
    """A plain dict as the previous journal wrote it (uuid4 id, no reconciliation fields) loads as unknown."""
    old = {
        "id": "0f" * 16,
        "client": "anonymous",
        "idempotency_key": "k",
        "product_id": "acme:eo",
        "member": "acme:eo",
        "sent": {},
        "fingerprint": "f",
        "state": "unknown",
        "created": 1700000000.0,
        "order_id": None,
        "order": None,
        "error": {"code": "provider_timeout", "detail": "late"},
    }
    loaded = OrderAttempt.from_json(orjson.dumps(old))
    assert loaded.state is AttemptState.UNKNOWN
    assert loaded.checks == 0
    assert loaded.error == AttemptError("provider_timeout", "late")


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        (AttemptState.SENDING, AttemptState.PLACED, True),
        (AttemptState.SENDING, AttemptState.REJECTED, True),
        (AttemptState.SENDING, AttemptState.UNKNOWN, True),
        (AttemptState.UNKNOWN, AttemptState.PLACED, True),
        (AttemptState.UNKNOWN, AttemptState.UNKNOWN, True),
        (AttemptState.UNKNOWN, AttemptState.REJECTED, False),
        (AttemptState.PLACED, AttemptState.UNKNOWN, False),
        (AttemptState.REJECTED, AttemptState.PLACED, False),
    ],
)
def test_moves(start: AttemptState, to: AttemptState, allowed: bool) -> None:
    """Placed and rejected are final; unknown never becomes rejected by a guess."""
    if allowed:
        start.check_move(to)
    else:
        with pytest.raises(ValueError, match=r"cannot|never"):
            start.check_move(to)


def test_attempt_ids_carry_their_age_and_old_ids_do_not() -> None:
    """A new id tells its age; a uuid4 hex id of the earlier layout tells nothing."""
    age = attempt_age_s(new_attempt_id())
    assert age is not None
    assert 0 <= age < 5
    assert attempt_age_s("ffffffffffff" + "0" * 20) is None
    assert attempt_age_s("short") is None
