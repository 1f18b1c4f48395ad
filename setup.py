"""Builds the one extension lth_fast._C (CPU always, CUDA when torch has CUDA and nvcc is found).

LTH_FAST_FORCE_CUDA=1 builds the CUDA sources even without a GPU (CI does, so CUDA compile and
link errors fail it); LTH_FAST_CPU_ONLY=1 leaves them out.
"""
import glob
import os
import shlex
import subprocess
import sys

from setuptools import setup

try:
    import torch
except ImportError:
    sys.exit("lth_fast: building lth_fast._C needs torch installed in this environment, and "
             "the build sees none (pip's isolated build environment has none). Install torch "
             "first, then build without isolation: pip install --no-build-isolation .")
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _want_cuda():
    if _flag("LTH_FAST_CPU_ONLY"):
        return False
    if _flag("LTH_FAST_FORCE_CUDA"):
        return True
    return torch.version.cuda is not None and CUDA_HOME is not None


def _cuda_dependency_includes():
    # torch's CUDA headers include cusparse.h etc., which ship with torch's pip CUDA
    # dependencies (site-packages/nvidia/cu*/include) rather than with every system toolkit.
    roots = [os.path.dirname(os.path.dirname(torch.__file__))]
    found = []
    for root in roots:
        found += sorted(glob.glob(os.path.join(root, "nvidia", "cu*", "include")))
        found += sorted(glob.glob(os.path.join(root, "nvidia", "*", "include")))
    return [p for p in dict.fromkeys(found) if os.path.isdir(p)]


def _shared_libstdcxx():
    """Link flags that keep libstdc++ shared. A compiler that finds only libstdc++.a (a GCC
    installed beside the system's, say) links a private copy into the extension; its locale
    facets then disagree with the copy libtorch uses, and formatting an error message crashes.
    Naming the shared library first makes the linker take it from the system's directories."""
    if not sys.platform.startswith("linux"):
        return []
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    try:
        found = subprocess.run(cxx + ["-print-file-name=libstdc++.so"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return []
    if os.path.isabs(found) and os.path.exists(found):
        return []
    print(f"lth_fast: {cxx[0]} has no shared libstdc++; linking the system's libstdc++.so.6")
    return ["-l:libstdc++.so.6"]


def _sources(pattern):
    return sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, pattern), recursive=True))


def extension():
    cpp = _sources("csrc/*.cpp") + _sources("csrc/common/*.cpp") + _sources("csrc/cpu/**/*.cpp")
    # -fopenmp: at::parallel_for is header code; without it the extension's loops run on one thread.
    # -ffp-contract=off: FMAs only where the code asks for one (std::fma, _mm*_fmadd_ps, as
    # torch's kernels use them); every other product is rounded before it is added, as in
    # torch, and the same in every ISA (the scalar build has no FMA to contract into).
    cxx = ["-O3", "-fopenmp", "-fno-math-errno", "-ffp-contract=off"]
    link = ["-fopenmp"] + _shared_libstdcxx()
    include = [os.path.join(HERE, "csrc")]
    macros = [("LTH_FAST_PYTHON_MODULE", "1")]
    if _want_cuda():
        if CUDA_HOME is None:
            sys.exit("setup.py: CUDA build asked for but no CUDA toolkit found; set CUDA_HOME")
        cu = _sources("csrc/cuda/*.cu")
        arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
        nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
        if not arch and not torch.cuda.is_available():
            nvcc += ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]
        include += _cuda_dependency_includes()
        print(f"lth_fast: building CPU + CUDA extension ({len(cpp)} C++ files, {len(cu)} CUDA files, "
              f"CUDA_HOME={CUDA_HOME})")
        return CUDAExtension("lth_fast._C", cpp + cu, include_dirs=include,
                             define_macros=macros,
                             extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=link)
    print(f"lth_fast: building CPU-only extension ({len(cpp)} C++ files)")
    return CppExtension("lth_fast._C", cpp, include_dirs=include, define_macros=macros,
                        extra_compile_args={"cxx": cxx}, extra_link_args=link)


# The extension links against this torch's C++ ABI: the package (and a wheel of it) requires
# the same release. pyproject.toml's extras hold every optional dependency.
TORCH_RELEASE = torch.__version__.split("+")[0]
RUNTIME = [f"torch=={TORCH_RELEASE}", "numpy", "safetensors>=0.4", "tqdm", "matplotlib"]

setup(install_requires=RUNTIME, ext_modules=[extension()], cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})
