"""Combining the frames of a stack, off the event loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["STACK_BLOCK", "stack_frames"]

#: Bytes of the float32 cube handed to the stack function at a time.
STACK_BLOCK = 4 << 20


def stack_frames(
    frames: list[np.ndarray], stack_function: Callable[..., np.ndarray]
) -> np.ndarray:
    """Combines frames as float32 with ``stack_function(array, axis=0)`` (blocking).

    The cube is combined a block of rows at a time: the whole float32 cube
    (4 bytes a pixel a frame) never exists, and each numpy call is short, so
    the event loop is not kept waiting for the GIL. The stack function must
    combine each pixel on its own, as medians, means and sums do.
    """
    shape = frames[0].shape
    row_bytes = len(frames) * 4 * int(np.prod(shape[1:], dtype=np.int64))
    rows = max(1, STACK_BLOCK // max(row_bytes, 1))
    out = np.empty(shape, dtype=np.float32)
    cube = np.empty((len(frames), min(rows, shape[0]), *shape[1:]), np.float32)
    for start in range(0, shape[0], rows):
        block = cube[:, : min(rows, shape[0] - start)]
        for index, frame in enumerate(frames):
            block[index] = frame[start : start + block.shape[1]]
        out[start : start + block.shape[1]] = stack_function(block, axis=0)
    return out
