"""Debian's Chromium for the dashboard's browser test: test tools cannot download a
browser of their own here, so Playwright drives the one from the distribution."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

log = logging.getLogger(__name__)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags Chromium keeps calling home, which a closed
# network refuses; as root it needs --no-sandbox.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def ensure_chromium() -> str:
    """The browser's path, installing Debian's package when missing and allowed to."""
    found = find_chromium()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("Chromium is missing: install Debian's `chromium` package "
                           "(apt-get install chromium) for the dashboard's browser test")
    log.info("installing Debian's chromium package")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
                   check=True, env=env)
    found = find_chromium()
    if not found:
        raise RuntimeError("installing chromium did not give a chromium binary")
    return found
