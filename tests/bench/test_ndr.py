"""Smoke test of ``spp bench ndr --quick``: it runs, searches and prints well-formed rows.

Short trials and a coarse resolution; speed is never asserted.
"""

from __future__ import annotations

import json
import os

import pytest

from spp.bench.main import main


@pytest.mark.root
def test_ndr_quick(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ndr", "--quick", "--json", "--seconds", "0.3", "--side", "spp-af_packet", "--side", "tc-redirect"])
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert code == 0, rows
    # the rows with a side that ran: spp phy af_packet vs testpmd (not run: no peer) and vs tc redirect
    assert [r["peer"] for r in rows] == [None, "linux tc (u32, mirred redirect)"], rows
    assert rows[0]["ndr_mpps"] == rows[1]["ndr_mpps"] and rows[0]["peer_error"]
    r = rows[1]
    assert r.keys() >= {"scenario", "side", "driver", "ndr_mpps", "peer", "peer_ndr_mpps", "ratio",
                        "generator_max_mpps", "top_delivered_mpps", "native"}
    assert (r["scenario"], r["side"], r["driver"], r["status"]) == ("ndr", "spp phy", "af_packet", "ok")
    assert r["native"] is True  # the compiled worker loop ran phy
    assert r["ndr_mpps"] > 0 and r["peer_ndr_mpps"] > 0 and r["generator_max_mpps"] > 0
    assert r["ratio"] == pytest.approx(r["ndr_mpps"] / r["peer_ndr_mpps"], rel=1e-2)
    for t in r["trials"]:
        assert t["sent"] > 0 and t["zero_loss"] == (t["delivered"] >= t["sent"])
    tag = f"{os.getpid() % 10000}"
    assert not [n for n in os.listdir("/sys/class/net") if n.endswith(tag) and n.startswith("spm")]
