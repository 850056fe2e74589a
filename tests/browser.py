"""Open a report page in headless Chromium as a reader would: render, probe, shoot.

Shared by the report tests (a synthetic report) and the workflow tests (the
smoke study's report).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (apt-get install chromium) to render the page",
)
WIDTHS = {"laptop": 1280, "phone": 390}
# A script appended to a copy of the page: what the browser rendered, as JSON.
PROBE = """<script>addEventListener("load", () => {
  const out = {
    images: [...document.images].map(i => i.complete && i.naturalWidth > 0),
    sections: [...document.querySelectorAll("main > section")].map(
      s => [s.id, s.getBoundingClientRect().height]),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script></body>"""


def chromium(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on `url` with a throw-away profile in `folder`."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={folder / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def render(page: Path, folder: Path, width: int) -> dict:
    """Load a probed copy of `page` at `width` px: images, sections, console lines."""
    probe = folder / f"probe-{page.stem}.html"
    text = page.read_text()
    if "</body>" not in text:
        raise ValueError(f"{page} has no </body>; the probe script needs one")
    probe.write_text(text.replace("</body>", PROBE))
    run = chromium(folder, probe.as_uri(), "--dump-dom", f"--window-size={width},900")
    found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the probe never ran in {page}: {run.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    result["console"] = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return result


def problems(result: dict, sections: list[str]) -> list[str]:
    """What a reader would see go wrong on a rendered page; empty when nothing."""
    found = [f"console: {line}" for line in result["console"]]
    if not result["images"]:
        found.append("the page shows no image")
    broken = [i for i, ok in enumerate(result["images"]) if not ok]
    if broken:
        found.append(f"images {broken} of {len(result['images'])} did not render")
    rendered = [name for name, _ in result["sections"]]
    if rendered != sections:
        found.append(f"sections {rendered}, expected {sections}")
    found += [
        f"section {name} is only {height:.0f}px high"
        for name, height in result["sections"]
        if height <= 100
    ]
    # tables and wide figures scroll inside their boxes, never the page
    if result["overflow"] > 1:
        found.append(f"page overflows by {result['overflow']}px")
    return found


def check_in_browser(page: Path, folder: Path, sections: list[str]) -> list[Path]:
    """Assert `page` renders cleanly on a laptop and a phone; return screenshots."""
    for width in WIDTHS.values():
        found = problems(render(page, folder, width), sections)
        assert not found, f"{page} at {width}px: {found}"
    shots = []
    for name, width in WIDTHS.items():
        shot = folder / f"{page.stem}-{name}.png"
        run = chromium(
            folder, page.as_uri(), f"--screenshot={shot}", f"--window-size={width},2400"
        )
        assert shot.is_file(), run.stderr[-2000:]
        with Image.open(shot) as image:
            assert image.size == (width, 2400)
            # a blank or one-colour page has few grey levels
            assert len(image.convert("L").resize((64, 120)).getcolors(4096)) > 20
        shots.append(shot)
    return shots
