# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""The tests need /dev/mpmc (the guest of tools/vm-run --hostfs); the
package is imported from this source tree."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

HEADER = os.environ.get(
    "MPMC_UAPI_HEADER",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../uapi/linux/mpmc.h"),
)


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    if not os.path.exists("/dev/mpmc"):
        need = pytest.mark.skip(reason="no /dev/mpmc (run in the guest: make check)")
        for item in items:
            if "needs_device" in item.keywords:
                item.add_marker(need)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_device: needs /dev/mpmc")
