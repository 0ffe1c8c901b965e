"""The rate-gate arithmetic (GCRA): whatever the arrivals, granted calls keep to the rate and burst."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.ratelimit import gcra

ARRIVALS = st.lists(
    st.tuples(st.floats(min_value=0, max_value=2.0), st.floats(min_value=0, max_value=5.0)), min_size=1, max_size=60
)


@given(
    per_s=st.floats(min_value=0.1, max_value=50),
    burst=st.floats(min_value=1, max_value=10),
    arrivals=ARRIVALS,
)
def test_granted_calls_never_exceed_the_rate_plus_the_burst(
    per_s: float, burst: float, arrivals: list[tuple[float, float]]
) -> None:
    """Any window of length W holds at most burst + W x per_s granted calls; refusals exceed their wait."""
    tat, now, sent = 0.0, 0.0, []
    for gap, max_wait in arrivals:
        now += gap
        tat, answer = gcra(tat, now, per_s, burst, max_wait)
        if answer.granted:
            assert answer.wait_s <= max_wait
            sent.append(now + answer.wait_s)
        else:
            assert answer.wait_s > max_wait
    sent.sort()
    interval = 1.0 / per_s
    for i, start in enumerate(sent):
        for j in range(i + 1, len(sent)):
            # The j-th call after the i-th goes no sooner than (j - i - (burst - 1)) intervals later
            # (less the microsecond that counts as no wait).
            assert sent[j] - start >= (j - i - (burst - 1)) * interval - 2e-6


@given(per_s=st.floats(min_value=0.1, max_value=50), burst=st.integers(min_value=1, max_value=10))
def test_a_full_gate_lets_the_burst_through_at_once(per_s: float, burst: int) -> None:
    """From idle, exactly `burst` calls go without waiting; the next waits one interval."""
    tat, waits = 0.0, []
    for _ in range(burst + 1):
        tat, answer = gcra(tat, 100.0, per_s, burst, 60.0)
        waits.append(answer.wait_s)
    assert waits[:burst] == [0.0] * burst
    assert abs(waits[burst] - 1.0 / per_s) < 1e-9
