"""Copy the page's browser libraries out of their npm packages into voltbus_api/static/vendor/.

    python services/api/web/vendor.py           # after changing package.json: npm install first
    python services/api/web/vendor.py --check   # fetch again and compare with what is committed

`npm ci` installs exactly what package-lock.json pins (its sha512 integrity is checked by npm);
the files listed in FILES are copied as they are, and VENDORED.json records the package
version, that integrity and each copied file's sha256 (tests/api/test_page_vendor.py checks
the committed files against it, so a hand edit is caught).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE.parent / "voltbus_api" / "static" / "vendor"
# package -> {file inside the package: name under static/vendor/}
FILES = {
    "uplot": {"dist/uPlot.iife.min.js": "uPlot.iife.min.js",
              "dist/uPlot.min.css": "uPlot.min.css",
              "LICENSE": "uPlot.LICENSE"},
}


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install(into: Path) -> Path:
    """npm ci of package.json + package-lock.json in a scratch directory; its node_modules."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, into / name)
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=into,
                   check=True)
    return into / "node_modules"


def vendor(target: Path) -> dict[str, object]:
    """Install and copy every file of FILES into target; the manifest it wrote."""
    lock = json.loads((HERE / "package-lock.json").read_text())["packages"]
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        modules = install(Path(scratch))
        target.mkdir(parents=True, exist_ok=True)
        for package, files in FILES.items():
            locked = lock[f"node_modules/{package}"]
            copied = {}
            for source, name in files.items():
                shutil.copyfile(modules / package / source, target / name)
                copied[name] = sha256(target / name)
            manifest[package] = {"version": locked["version"],
                                 "integrity": locked["integrity"], "files": copied}
    (target / "VENDORED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    """Vendor, or with --check compare a fresh copy with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fetch into a scratch directory and compare with static/vendor")
    args = parser.parse_args()
    if not args.check:
        vendor(VENDOR)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = vendor(Path(scratch))
    committed = json.loads((VENDOR / "VENDORED.json").read_text())
    if fresh != committed:
        print(f"static/vendor differs from package-lock.json:\n{fresh}\n{committed}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
