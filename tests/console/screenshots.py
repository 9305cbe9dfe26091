"""Refresh the console screenshots tracked in docs/: ``python -m tests.console.screenshots``.

A normal test run writes its screenshots to a temporary folder (the ``shots`` fixture), so it
leaves the checkout unchanged; this command runs the browser tests that take them with
``SMARTOKEN_SCREENSHOTS=1``, which points them at docs/.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.console.conftest import SCREENSHOTS_ENV

TESTS = ("tests/console/test_browser.py::test_first_run_key_sdk_usage_playground_revoke",
         "tests/console/test_browser.py::test_phone_width_has_no_horizontal_overflow",
         "tests/console/test_pages_browser.py::test_every_page_in_language_and_scheme_is_accessible")


def main(argv: list[str]) -> int:
    os.environ[SCREENSHOTS_ENV] = "1"
    return int(pytest.main(["-q", "-p", "no:cacheprovider", *TESTS, *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
