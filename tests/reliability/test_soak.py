"""The short soak in CI: classifier + shallow mirror, reconfigured every second, nothing lost or leaked.

The 10-minute run is ``python -m spp.testing.soak --duration 600`` (docs/reliability.md).
"""

from __future__ import annotations

import pytest

from spp.testing.soak import main, run


def test_short_soak() -> None:
    res = run(15.0, period=1.0, rate=20_000.0, warmup=5.0, rss_slack_mib=8.0)
    assert res.ok, "\n".join(res.problems)
    assert res.reconfigurations >= 12 and res.failed_commands == 0
    assert res.offered > 100_000 and res.delivered > res.offered // 2
    assert res.mirror_copies > 0
    assert res.pool_in_use_end == 0 and res.balance == 0


def test_soak_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--duration", "0"])
    assert exc.value.code == 2
    assert "--duration, --period and --rate must be positive numbers" in capsys.readouterr().err
