"""Progress steps that count their work show a rate and the time left."""

from __future__ import annotations

import io

from rich.console import Console

from audit_sdk.progress_display import ProgressDisplay


def test_counted_steps_show_rate_and_time_left() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140, color_system=None)
    with ProgressDisplay(console=console) as progress:
        with progress.step("Recommending", total=40) as step:
            for _ in range(40):
                step.advance()
        with progress.step("Loading"):
            pass
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    recommending = [line for line in lines if "Recommending" in line][-1]
    loading = [line for line in lines if "Loading" in line][-1]
    assert "/s" in recommending and "40/40" in recommending
    assert "/s" not in loading and "--:--" not in loading
