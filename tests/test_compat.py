"""vitseg.compat: what ``import vitseg`` sets up before torch allocates anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vitseg.compat import thp_mode

_FAULTS = """
import resource, sys
import vitseg  # noqa: F401  (before torch's first allocation)
import torch

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # the allocator's first large block
start = faults()
for _ in range(4):
    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
print((faults() - start) / 4)
"""


def _python(code: str, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"} | env
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, check=True
    )
    return res.stdout.strip()


def test_import_asks_torch_for_huge_pages_unless_told_otherwise():
    code = "import os, vitseg; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    assert _python(code) == "1"
    assert _python(code, THP_MEM_ALLOC_ENABLE="0") == "0"  # a user's choice is kept


@pytest.mark.skipif(
    thp_mode() not in {"always", "madvise"},
    reason=f"the kernel gives no transparent huge pages here (mode: {thp_mode()})",
)
def test_huge_pages_cut_the_page_faults_of_large_tensors():
    # 64 MB touched anew: 16,384 faults of 4 KB pages; with huge pages a few dozen
    # (2 MB each) plus the tail. Under "always" the kernel may give huge pages anyway.
    with_thp = float(_python(_FAULTS))
    without = float(_python(_FAULTS, THP_MEM_ALLOC_ENABLE="0"))
    assert with_thp < 4096, (with_thp, without)
    if thp_mode() == "madvise":
        assert without > 8192, (with_thp, without)


def test_huge_pages_names_the_request_and_the_kernel_mode(tmp_path, monkeypatch):
    from vitseg.compat import huge_pages

    sysfs = tmp_path / "enabled"
    sysfs.write_text("always [madvise] never\n")
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    assert huge_pages(str(sysfs)) == "THP_MEM_ALLOC_ENABLE=1; kernel transparent_hugepage=madvise"
    assert thp_mode(str(sysfs)) == "madvise"
    sysfs.write_text("always madvise [never]\n")
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    assert huge_pages(str(sysfs)) == "THP_MEM_ALLOC_ENABLE=0; kernel transparent_hugepage=never"
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE")
    assert huge_pages(str(tmp_path / "missing")) == (
        "THP_MEM_ALLOC_ENABLE=unset; kernel mode unknown"
    )
