"""Properties of the compiled extension itself: its parallel loops run on several threads; no
AVX2/AVX-512 instruction sits outside the functions dispatched at run time, so the library loads
and runs its scalar path on any x86-64 CPU; it shares torch's libstdc++; and CMakeLists.txt
compiles every folder of sources that setup.py does."""
import pathlib
import re
import shutil
import subprocess

import pytest
import torch

import lth_fast
from lth_fast import _C


def test_parallel_loops_use_every_thread():
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("torch runs one thread here")
    assert torch.ops.lth_fast.parallel_threads() == threads


def test_cpu_isa_names_the_path_and_honours_the_override(monkeypatch):
    assert lth_fast.cpu_isa() in ("scalar", "avx2", "avx512")
    monkeypatch.setenv("LTH_FAST_CPU_ISA", "scalar")
    assert lth_fast.cpu_isa() == "scalar"
    monkeypatch.setenv("LTH_FAST_CPU_ISA", "sse9")
    with pytest.raises(ValueError, match="LTH_FAST_CPU_ISA=sse9"):
        lth_fast.cpu_isa()


def _functions_using(disassembly: str, pattern: str):
    """Names of the functions whose instructions match `pattern`."""
    found, name = set(), None
    for line in disassembly.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            name = header.group(1)
        elif name and re.search(pattern, line):
            found.add(name)
    return found


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_simd_instructions_only_in_dispatched_kernels():
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", _C.__file__],
                          capture_output=True, text=True, check=True).stdout
    avx512 = _functions_using(text, r"%zmm|\{%k[1-7]\}|kmov")
    ymm = _functions_using(text, r"%ymm")
    assert avx512, "no AVX-512 code found at all: is the AVX-512 path compiled?"
    assert all("avx512_kernels" in f for f in avx512), sorted(
        f for f in avx512 if "avx512_kernels" not in f)
    assert all("avx2_kernels" in f or "avx512_kernels" in f for f in ymm), sorted(
        f for f in ymm if "avx2_kernels" not in f and "avx512_kernels" not in f)


@pytest.mark.skipif(shutil.which("nm") is None or shutil.which("readelf") is None,
                    reason="needs nm and readelf (binutils)")
def test_libstdcxx_is_shared_with_torch():
    """A private copy of libstdc++ inside the extension (what a compiler that finds only
    libstdc++.a links) has its own locale facet ids; formatting an error message with torch's
    streams then crashes the process. The extension must use the shared library torch uses."""
    needed = subprocess.run(["readelf", "-d", _C.__file__], capture_output=True, text=True,
                            check=True).stdout
    assert "[libstdc++.so.6]" in needed, needed
    defined = subprocess.run(["nm", "--defined-only", "-C", _C.__file__], capture_output=True,
                             text=True, check=True).stdout
    private = [line for line in defined.splitlines()
               if "std::locale::" in line or "codecvt" in line or "ios_base::Init" in line]
    assert not private, f"libstdc++ internals linked into {_C.__file__}: {private[:5]}"


def test_error_message_with_numbers_formats():
    """The same failure seen from Python: a message built from sizes and indices."""
    w = [torch.randn(5)]
    with pytest.raises(ValueError, match=r"amount\[0\] = 7 exceeds the 5 alive entries"):
        lth_fast.prune_(w, [torch.ones(5, dtype=torch.bool)], 7)


def test_cmake_globs_every_source_folder():
    """setup.py finds csrc/cpu/**/*.cpp recursively; CMakeLists.txt names each folder, so a new
    folder of sources must be added there too or the CMake library misses its ops."""
    root = pathlib.Path(__file__).resolve().parents[1]
    cmake = root / "CMakeLists.txt"
    if not cmake.exists():
        pytest.skip("not a source checkout")
    globbed = {pathlib.PurePosixPath(g).parent
               for g in re.findall(r"csrc[\w/]*/\*\.(?:cpp|cu)", cmake.read_text())}
    folders = {pathlib.PurePosixPath(p.relative_to(root).parent.as_posix())
               for p in (root / "csrc").rglob("*") if p.suffix in (".cpp", ".cu")}
    assert folders <= globbed, sorted(map(str, folders - globbed))


ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_isolated_build_stops_at_once_and_says_what_to_do(tmp_path):
    # pip's isolated build has no torch to compile against: setup.py refuses before any
    # download, naming the command that works
    import sys
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "pip install --no-build-isolation ." in out.stdout + out.stderr
    assert not list(tmp_path.iterdir())


def test_package_requires_the_torch_it_was_built_against():
    from importlib import metadata
    requires = metadata.requires("lth_fast")
    assert f"torch=={torch.__version__.split('+')[0]}" in requires
    for dep in ("numpy", "safetensors>=0.4", "tqdm", "matplotlib"):
        assert dep in requires
    extras = metadata.metadata("lth_fast").get_all("Provides-Extra")
    assert {"demo", "tensorboard", "lightning", "hf", "test"} <= set(extras)
