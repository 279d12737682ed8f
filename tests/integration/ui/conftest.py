"""Fixtures of the browser tests: Chromium, the screenshot dir, and browsers that report how a test failed."""

from __future__ import annotations

import os

import pytest

from tests.integration.ui.browser import Browser, missing_binaries

INSTALL_HINT = "run `make install` (it installs Debian's chromium and chromium-driver with apt-get)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Each phase's report on the test item, for the `browser` fixture's teardown to see a failure.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium and its driver are installed; in CI (CI=true) their absence fails the tests.
    The tests ask for it first, so a missing Chromium fails them before any service starts."""
    problems = [f"{path} is missing" for path in missing_binaries()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("the Python package selenium is missing (requirements-dev.txt)")
    if problems:
        message = f"browser tests need Chromium: {'; '.join(problems)}; {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Where the tests' screenshots go (docs/images too with UPDATE_SCREENSHOTS=1)."""
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture
def browser(chromium, screenshots, request):
    """browser(base_url) opens a fresh Chromium on that Airflow; closed after the test. When the test
    failed, its output shows each browser's page, screenshot and page text."""
    opened: list[Browser] = []

    def open_browser(base_url: str) -> Browser:
        b = Browser(base_url, screenshots)
        opened.append(b)
        return b

    yield open_browser
    call = getattr(request.node, "report_call", None)
    for i, b in enumerate(opened):
        if call is not None and call.failed:
            print(f"browser {i} when {request.node.name} failed: {b.diagnostics(f'{request.node.name}-{i}')}")
        b.close()
