"""The one rule for seeds, shared by dreams, clips, atlases, training and recipe files."""

from __future__ import annotations

from zoo.errors import UserError

SEED_MAX = 2**63 - 1  # seeds are counts: numpy's generators refuse negative ones


def check_seed(seed: object, flag: str = "--seed") -> int:
    """A whole number 0 .. 2^63-1, or one line naming the flag."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"{flag} {seed!r}: must be a whole number from 0 to {SEED_MAX}")
    return seed
