# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""The one home of the ABI is uapi/linux/mpmc.h: parse it and compare
everything mpmc/_abi.py says about it."""

import re

from conftest import HEADER
from mpmc import _abi as abi


def _header() -> str:
    with open(HEADER) as f:
        text = f.read()
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments out


def test_constants_match_header():
    text = _header()
    defines = dict(re.findall(r"^#define\s+(MPMC_\w+)\s+(.+?)\s*$", text, flags=re.M))
    checked = 0
    for name, value in defines.items():
        if name.startswith("MPMC_IOC_") and name != "MPMC_IOC_MAGIC":
            continue
        expr = re.sub(r"\b(MPMC_\w+)\b", lambda m: str(getattr(abi, m.group(1))), value)
        expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)U?L?L?\b", r"\1", expr)  # C suffixes
        expr = expr.replace("(__u64)", "")
        assert getattr(abi, name) == eval(expr, {}), name  # noqa: S307 - header ints
        checked += 1
    assert checked >= 13


def test_structs_match_header():
    text = _header()
    structs = dict(re.findall(r"struct\s+(mpmc_\w+)\s*\{(.*?)\};", text, flags=re.S))
    assert set(structs) == set(abi.STRUCTS)
    for name, body in structs.items():
        fields = [
            (f, t, int(n) if n else 1)
            for t, f, n in re.findall(r"(__[us]\d+)\s+(\w+)(?:\[(\d+)\])?;", body)
        ]
        assert fields == abi.STRUCTS[name], name


def test_ioctl_numbers_match_header():
    text = _header()
    found = re.findall(
        r"^#define\s+(MPMC_IOC_\w+)\s+_IO(R|W|WR)?\(MPMC_IOC_MAGIC,\s*(\d+)(?:,\s*struct\s+(\w+))?\)",
        text,
        flags=re.M,
    )
    assert len(found) == len(abi.IOCTLS) == 9
    dirs = {"": 0, "W": 1, "R": 2, "WR": 3}
    for name, d, nr, struct_name in found:
        assert abi.IOCTLS[name] == (dirs[d], int(nr), struct_name or None), name
    # Known values on x86-64, as the C compiler computes them.
    assert abi.MPMC_IOC_SEND == 0xC018B706
    assert abi.MPMC_IOC_GET_STATS == 0x8058B703
