"""A terminal progress display of ``exposure_state`` values.

On a terminal, one line is redrawn in place with, per camera, the phase, a bar
of the elapsed fraction, the remaining seconds and the image and stack counts.
Elsewhere (a pipe, a log file) one line is printed per phase change, so the
output stays readable. Messages such as written file names are printed above
the live line.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

__all__ = ["ProgressView", "describe"]

#: Phases after which a camera's line is no longer live.
FINAL_PHASES = frozenset({"idle", "done", "failed", "aborted"})


def _bar(state: dict[str, Any], width: int) -> str:
    total = state.get("total")
    elapsed = state.get("elapsed")
    if not total or elapsed is None:  # total 0: a bias has nothing to fill
        fraction = 1.0 if state.get("phase") in FINAL_PHASES else 0.0
    else:
        fraction = min(max(float(elapsed) / float(total), 0.0), 1.0)
    filled = round(fraction * width)
    return "#" * filled + "-" * (width - filled)


def describe(state: dict[str, Any], width: int = 20) -> str:
    """One camera's progress as text.

    Parameters
    ----------
    state
        An ``exposure_state`` keyword value.
    width
        Characters of the progress bar.
    """
    phase = state.get("phase") or "?"
    parts = [f"{state.get('camera')}: {phase:<15}", f"[{_bar(state, width)}]"]
    remaining = state.get("remaining")
    if remaining is not None and phase not in FINAL_PHASES:
        parts.append(f"{float(remaining):6.1f} s left")
    if (state.get("count_total") or 0) > 1:
        parts.append(f"image {state.get('count_n')}/{state.get('count_total')}")
    if (state.get("stack_total") or 0) > 1:
        parts.append(f"frame {state.get('stack_n')}/{state.get('stack_total')}")
    if state.get("error"):
        parts.append(f"error: {state['error']}")
    return " ".join(parts)


class ProgressView:
    """Shows exposure progress from ``exposure_state`` values.

    Parameters
    ----------
    stream
        Where to write (default: standard output).
    live
        Redraw one line in place; default: whether ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.states: dict[str, dict[str, Any]] = {}
        self._drawn = False

    def update(self, state: dict[str, Any]) -> None:
        """Shows a new ``exposure_state`` value of one camera."""
        camera = str(state.get("camera"))
        previous = self.states.get(camera)
        self.states[camera] = dict(state)
        if self.live:
            self._draw()
        elif previous is None or _changed(previous, state):
            self._print(describe(state))

    def message(self, text: str) -> None:
        """Prints a line of text above the live progress line."""
        self._print(text)
        if self.live:
            self._draw()

    def close(self) -> None:
        """Ends the live line."""
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _draw(self) -> None:
        # One terminal row, redrawn in place: a wrapped line would scroll.
        width = shutil.get_terminal_size().columns - 1
        bar = max(4, min(20, (width // max(len(self.states), 1)) - 45))
        line = " | ".join(describe(state, bar) for state in self.states.values())
        if len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def _print(self, text: str) -> None:
        if self.live and self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _changed(previous: dict[str, Any], state: dict[str, Any]) -> bool:
    keys = ("phase", "exposure_id", "count_n", "stack_n", "error")
    return any(previous.get(key) != state.get(key) for key in keys)
