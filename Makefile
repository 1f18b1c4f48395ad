# make demo   — from a fresh clone: finds winning tickets for LeNet-300-100 on real MNIST digits
#               (lth-fast imp with its defaults; a few minutes on 2 CPU cores), prints the table
# make test   — from a fresh clone: virtualenv, torch, the package with its compiled extension, tests
# make bench  — the speed table (lth-fast bench) at 10M and 50M parameters
# make docs   — serves the docs site (mkdocs.yml: README.md as its home page, the pages of docs/)
# make wheel  — dist/lth_fast-*.whl (it requires the torch release it was compiled against),
#               then installed into a fresh virtualenv beside that torch and smoke-tested
# LTH_FAST_FORCE_CUDA=1 / LTH_FAST_CPU_ONLY=1 choose whether the CUDA kernels are built.
VENV ?= .venv
PY := $(VENV)/bin/python
export CUDA_HOME ?= /usr/local/cuda
SOURCES := setup.py pyproject.toml $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')

.PHONY: install demo test bench docs wheel cmake clean

install: $(VENV)/.installed

# What the build needs before it starts: torch (the extension compiles against it) and the
# build tools. Everything else comes from pyproject.toml: the package's dependencies and extras.
EXTRAS ?= demo,test,tensorboard,lightning,hf
$(VENV)/.deps:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q "torch>=2.6" ninja setuptools wheel
	touch $@

$(VENV)/.installed: $(VENV)/.deps $(SOURCES)
	$(PY) -m pip install -q --no-build-isolation -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(PY) -m lth_fast imp

test: install
	$(PY) -m pytest tests -q

bench: install
	$(PY) -m lth_fast bench --sizes 10M,50M

docs: install
	$(PY) -m mkdocs serve

WHEEL_VENV := build/wheel-check
wheel: $(VENV)/.deps
	rm -rf dist $(WHEEL_VENV)
	$(PY) -m pip wheel -q --no-build-isolation --no-deps . -w dist
	python3 -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q "torch==$$($(PY) -c 'import torch;print(torch.__version__.split("+")[0])')"
	$(WHEEL_VENV)/bin/pip install -q dist/lth_fast-*.whl
	cd build && wheel-check/bin/python ../tests/scripts/wheel_smoke.py

# CMake >= 3.26 knows nvcc's C++20 flag (torch 2.14 headers need C++20): taken from PyPI.
cmake: $(VENV)/.deps
	$(PY) -m pip install -q "cmake>=3.26"
	TORCH_CUDA_ARCH_LIST="8.0 9.0" $(VENV)/bin/cmake -S . -B build-cmake \
		-DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
		-DPython_EXECUTABLE=$(abspath $(PY)) -DLTH_FAST_CUDA=$${LTH_FAST_FORCE_CUDA:-0} \
		-DCUDA_TOOLKIT_ROOT_DIR=$(CUDA_HOME) -DCMAKE_CUDA_COMPILER=$(CUDA_HOME)/bin/nvcc > build-cmake.log
	$(VENV)/bin/cmake --build build-cmake -j2

clean:
	rm -rf build build-cmake build-cmake.log dist lth_fast/*.so *.egg-info
