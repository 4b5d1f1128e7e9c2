"""The longest window of non-2xx answers, from the recording proxy's answers (pure)."""

from __future__ import annotations

from ops.chaos.recorder import Answer, longest_failure_window


def test_no_failure_is_no_window() -> None:
    assert longest_failure_window([Answer(0.0, 0.1, 200, "evt_1"), Answer(0.2, 0.3, 200, "evt_2")]) == (0.0, 0)


def test_the_longest_run_of_failures_from_its_first_sending_to_its_last_answer() -> None:
    answers = [
        Answer(0.0, 0.1, 200, "evt_1"),
        Answer(1.0, 6.0, 503, "evt_2"),  # sent at 1.0, answered 503 at 6.0
        Answer(2.0, 7.0, 503, "evt_3"),
        Answer(7.1, 7.2, 200, "evt_4"),
        Answer(8.0, 9.0, 0, "evt_5"),  # no answer at all counts as a failure
        Answer(9.1, 9.2, 200, "evt_6"),
    ]
    assert longest_failure_window(answers) == (6.0, 2)


def test_a_run_still_failing_at_the_end_counts() -> None:
    assert longest_failure_window([Answer(0.0, 0.1, 200, "a"), Answer(1.0, 3.5, 503, "b")]) == (2.5, 1)
