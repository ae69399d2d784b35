"""Validation scripts in their quick mode (slow: `make test-slow`)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_linear_vs_pde_quick(tmp_path):
    """Growth rates of full runs within 1% of λ_l, and the white-noise winner equals l*(β)."""
    result = subprocess.run([sys.executable, ROOT / "validation" / "linear_vs_pde.py", "--quick", "--out", tmp_path],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "PASS" in (tmp_path / "rates.md").read_text()
    winners = (tmp_path / "winners.md").read_text()
    agreed, total = map(int, winners.rsplit("Agreement: ", 1)[1].split(" ")[0].split("/"))
    assert agreed >= 0.8 * total
    assert (tmp_path / "rates.png").stat().st_size > 0
