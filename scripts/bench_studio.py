"""Studio responsiveness: API latency while a 1024x1024 dream runs on the CPU, and the time from pressing
Dream (at 512x512) to the first preview. Runs the slow test that measures it and prints its line.

    python scripts/bench_studio.py
"""

import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", "-m", "slow", "-p", "no:cacheprovider",
                          str(root / "tests" / "test_studio_server.py::test_api_answers_while_a_big_dream_runs")],
                         cwd=root))
