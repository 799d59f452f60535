"""Backoff: doubling from the first delay to the cap, jitter only shortening, trio time."""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing

from cluster.backoff import Backoff, exponential_s


def test_exponential_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [exponential_s(0.1, 1.0, n) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_exponential_after_very_many_failures_is_the_cap_not_an_overflow() -> None:
    assert exponential_s(0.1, 5.0, 10_000) == 5.0


def test_exponential_of_a_zero_first_delay_stays_zero() -> None:
    assert exponential_s(0.0, 3600.0, 5) == 0.0  # a job's retryBackoff may be 0


async def test_without_jitter_the_waits_are_exact_and_a_success_starts_again() -> None:
    backoff = Backoff(0.05, 0.3, jitter=0)
    assert [backoff.failed() for _ in range(5)] == pytest.approx([0.05, 0.1, 0.2, 0.3, 0.3])
    assert backoff.failures == 5
    backoff.succeeded()
    assert (backoff.failures, backoff.retry_at) == (0, -math.inf)
    assert backoff.failed() == pytest.approx(0.05)


async def test_jitter_shortens_a_wait_by_at_most_its_fraction_and_never_passes_the_cap() -> None:
    backoff = Backoff(1.0, 4.0, jitter=0.5, rng=random.Random(7))
    for failures in range(8):
        base = exponential_s(1.0, 4.0, failures)
        assert base * 0.5 <= backoff.failed() <= base


async def test_jitter_spreads_the_waits_of_many_retriers() -> None:
    rng = random.Random(1)
    waits = {round(Backoff(1.0, 4.0, rng=rng).failed(), 6) for _ in range(50)}
    assert len(waits) > 40
    assert min(waits) >= 0.8 and max(waits) <= 1.0  # the default jitter: 20 % at most


async def test_retry_at_is_on_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    backoff = Backoff(2.0, 10.0, jitter=0)
    start = trio.current_time()
    assert backoff.failed() == 2.0
    assert backoff.retry_at == start + 2.0
    await trio.sleep_until(backoff.retry_at)
    assert trio.current_time() == start + 2.0
    assert backoff.failed() == 4.0
    assert backoff.retry_at == start + 6.0


async def test_a_retry_loop_waits_the_doubling_delays_in_trio_time(
        autojump_clock: trio.testing.MockClock) -> None:
    backoff = Backoff(0.1, 0.4, jitter=0)
    attempts: list[float] = []
    start = trio.current_time()
    while len(attempts) < 5:
        attempts.append(trio.current_time() - start)
        await trio.sleep(backoff.failed())
    assert attempts == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.1])


@pytest.mark.parametrize(("initial_s", "max_s", "jitter"),
                         [(0, 1, 0.1), (-1, 1, 0.1), (1, 0, 0.1), (1, 2, 1.0), (1, 2, -0.1)])
def test_nonsense_parameters_are_refused(initial_s: float, max_s: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial_s, max_s, jitter=jitter)
