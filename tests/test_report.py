"""``distillwatch report`` on the session's pipeline output, opened in a real headless Chromium.

Checks what a reader sees: every chart's SVG is in the rendered DOM with a
drawn path or bars, the cluster's members and shared infrastructure are
listed, and a screenshot of the page is not blank. Nothing is fetched.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from investigation import DATABASE, Investigation

from pipeline.cli import main

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHARTS = ("chart-rate", "chart-score", "chart-categories", "chart-contributions")


def chromium(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium on ``page`` offline (fails with an install hint if missing)."""
    binary = shutil.which("chromium") or CHROMIUM
    assert Path(binary).exists(), "chromium not found: run scripts/install-deps.sh (apt-get install chromium)"
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--window-size=1000,1600",
        *mode,
        page.as_uri(),
    ]
    return subprocess.run(args, capture_output=True, timeout=60, check=True)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of raw pixel bytes) of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and body[12] == 0, "only 8-bit non-interlaced PNGs"
            channels = {2: 3, 6: 4, 0: 1, 4: 2}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def svg_of(dom: str, chart_id: str) -> str:
    m = re.search(rf'<svg[^>]*id="{chart_id}".*?</svg>', dom, re.DOTALL)
    assert m, f"{chart_id} missing from the rendered DOM"
    return m.group(0)


def drawn(svg: str) -> bool:
    """A path with at least two points, or a bar wider than one pixel."""
    paths = re.findall(r'<path[^>]*\sd="([^"]+)"', svg)
    bars = [float(w) for w in re.findall(r'<rect class="bar"[^>]*width="([\d.]+)"', svg)]
    return any(len(re.findall(r"[ML]", d)) >= 2 for d in paths) or any(w > 1 for w in bars)


@pytest.fixture()
def env(investigation: Investigation, monkeypatch: pytest.MonkeyPatch) -> Investigation:
    monkeypatch.setenv("DW_CLICKHOUSE_MODE", "embedded")
    monkeypatch.setenv("DW_CLICKHOUSE_PATH", str(investigation.settings.clickhouse_path))
    monkeypatch.setenv("DW_CLICKHOUSE_DATABASE", DATABASE)
    return investigation


def test_cluster_report_renders_in_chromium(env: Investigation, tmp_path: Path) -> None:
    cluster = env.cluster_alerts()[0]
    page = tmp_path / "cluster.html"
    assert main(["report", cluster["alert_id"], "--out", str(page)]) == 0
    html = page.read_text()
    assert not re.search(r"<script|https?://(?!www\.w3\.org/2000/svg)", html), "self-contained, no fetches"
    dom = chromium(page, tmp_path, "--dump-dom").stdout.decode()
    for chart in CHARTS:
        assert drawn(svg_of(dom, chart)), f"{chart} has nothing drawn"
    assert len(re.findall(r'<rect class="bar"', svg_of(dom, "chart-categories"))) >= 4
    assert "member_harvest_evidence" in svg_of(dom, "chart-contributions")
    for account in cluster["accounts"]:
        assert account in dom, f"member {account} missing"
    assert "Shared infrastructure" in dom and "asn_ua" in dom and "ip_prefix" in dom

    shot = tmp_path / "cluster.png"
    chromium(page, tmp_path, f"--screenshot={shot}")
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1600)
    colours = {row[i : i + 3] for row in rows[::8] for i in range(0, len(row), 4 * 8)}
    assert len(colours) > 20, f"screenshot looks blank ({len(colours)} colours)"
    reds = sum(
        1 for row in rows for i in range(0, len(row), 4) if row[i] > 150 and row[i + 1] < 90 < row[i] - 40
    )
    assert reds > 200, "the request-rate line (red) is visible"


def test_account_report_and_unknown_target(
    env: Investigation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = env.verdict["account_id"]
    page = tmp_path / "account.html"
    assert main(["report", account, "--out", str(page)]) == 0
    dom = chromium(page, tmp_path, "--dump-dom").stdout.decode()
    for chart in CHARTS:
        assert drawn(svg_of(dom, chart)), f"{chart} has nothing drawn"
    assert "Members" not in dom and "true_positive" in dom and "planted verdict" in dom
    assert main(["report", "acct-does-not-exist", "--out", str(tmp_path / "x.html")]) == 2
    assert "no alert, cluster or account" in capsys.readouterr().err
