"""`ops.pipeline.Quiet`, the settle test shared by the demo, the chaos runner and the benchmark."""

from __future__ import annotations

from ops.pipeline import Quiet


def test_quiet_needs_the_condition_to_hold_without_a_break() -> None:
    q = Quiet(6.0)
    assert [q.update(True, t) for t in (10.0, 12.0, 15.9)] == [False, False, False]
    assert q.update(True, 16.0) and q.since == 10.0
    assert not q.update(False, 17.0) and q.since is None  # a break starts the count again
    assert not q.update(True, 18.0) and not q.update(True, 23.9) and q.update(True, 24.0)
