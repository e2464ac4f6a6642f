"""What the compose path asks for and says: .env.example asks for the central system's URL, the
README says what happens without one, in the words the page and the gateway really use."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_env_example_asks_for_the_central_system_and_says_what_happens_without_one() -> None:
    text = (REPO / ".env.example").read_text()
    assert re.search(r"^VOLTBUS_CSMS_URL=$", text, re.M), "leave it for the user to fill in"
    before = text.split("VOLTBUS_CSMS_URL=\n")[0].splitlines()
    lines: list[str] = []
    while before and before[-1].startswith("#"):
        lines.insert(0, before.pop())
    comment = "\n".join(lines)
    for needed in ("Fill this in", "--profile dev", "central system not connected", "offline"):
        assert needed in comment, needed
    # The compose default it describes is the one compose.yaml has.
    assert "${VOLTBUS_CSMS_URL:-ws://devcsms:9000/ocpp}" in (REPO / "compose.yaml").read_text()


def test_readme_compose_path_says_what_happens_without_a_central_system() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploy on a Raspberry Pi with Docker Compose")[1].split("\n## ")[0]
    for needed in ("VOLTBUS_CSMS_URL", "--profile dev", "central system not connected",
                   "offline"):
        assert needed in section, needed
    page = (REPO / "services/api/voltbus_api/static/app.js").read_text()
    assert '"not connected"' in page  # what the page shows for a link that is down
