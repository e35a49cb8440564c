"""Run the slow video and distributed-dream acceptance tests (kept out of the default suite for time).

    python scripts/check_video.py [extra pytest args]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    files = [str(ROOT / "tests" / f) for f in ("test_video.py", "test_video_flow.py", "test_dream_dist.py")]
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-m", "slow or not slow", *files, *sys.argv[1:]]))
