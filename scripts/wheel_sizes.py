"""Prints the download size of what scripts/setup.sh installs.

Asks pip which files it would fetch for the set-up's requirements (a dry run
into a fresh report, nothing installed) and sums their sizes as the package
index reports them. The README and setup.sh quote its total.

    python3 scripts/wheel_sizes.py
"""

import json
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.request

SETUP = pathlib.Path(__file__).with_name("setup.sh")


def requirements() -> list[str]:
    """Returns the requirement list of setup.sh, with its torch version."""
    text = SETUP.read_text()
    version = re.search(r"^torch_version=(\S+)$", text, re.M).group(1)
    listed = re.search(r"^requirements=\((.*)\)$", text, re.M).group(1)
    return [item.replace("$torch_version", version) for item in shlex.split(listed)]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        report_path = f"{folder}/report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
             "--ignore-installed", "--report", report_path, *requirements()],
            check=True,
        )
        with open(report_path) as report_file:
            report = json.load(report_file)

    total = 0
    for item in report["install"]:
        url = item["download_info"]["url"]
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=60) as response:
            size = int(response.headers["Content-Length"])
        total += size
        print(f"{size / 1e6:10.1f} MB  {url.rsplit('/', 1)[-1]}")
    print(f"{total / 1e9:10.2f} GB  in {len(report['install'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
