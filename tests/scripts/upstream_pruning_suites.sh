#!/usr/bin/env bash
# PyTorch's and Lightning's own pruning tests, run against our drop-ins (docs/integrations.md):
#   tests/scripts/upstream_pruning_suites.sh PYTORCH_SRC LIGHTNING_SRC
# PYTORCH_SRC: a pytorch checkout (test/nn/test_pruning.py); LIGHTNING_SRC: a Lightning checkout
# at the release installed here (tests/tests_pytorch). Their files are copied to a temporary
# folder and changed only where the issue of a drop-in says: the import of the module and the
# mock.patch targets (PyTorch's), the import of ModelPruning (Lightning's). Neither file is
# kept in this repository.
set -euo pipefail
torch_src=${1:?usage: $0 PYTORCH_SRC LIGHTNING_SRC}
lightning_src=${2:?usage: $0 PYTORCH_SRC LIGHTNING_SRC}
py=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sed -e 's/^import torch\.nn\.utils\.prune as prune$/import lth_fast.nn.utils.prune as prune/' \
    -e 's/"torch\.nn\.utils\.prune\./"lth_fast.nn.utils.prune./' \
    "$torch_src/test/nn/test_pruning.py" > "$work/test_pruning_torch.py"
grep -q '^import lth_fast.nn.utils.prune as prune$' "$work/test_pruning_torch.py"
echo "== PyTorch test/nn/test_pruning.py against lth_fast.nn.utils.prune"
(cd "$work" && "$py" -m pytest -q -p no:cacheprovider test_pruning_torch.py)

mkdir -p "$work/lightning"
cp -r "$lightning_src/tests/tests_pytorch" "$work/lightning/"
t="$work/lightning/tests_pytorch/callbacks/test_pruning.py"
sed -i 's/^from lightning\.pytorch\.callbacks import ModelCheckpoint, ModelPruning$/from lightning.pytorch.callbacks import ModelCheckpoint\nfrom lth_fast.integrations.lightning import ModelPruning/' "$t"
grep -q '^from lth_fast.integrations.lightning import ModelPruning$' "$t"
echo "== Lightning tests/tests_pytorch/callbacks/test_pruning.py against lth_fast's ModelPruning"
(cd "$work/lightning" && "$py" -m pytest -q -p no:cacheprovider tests_pytorch/callbacks/test_pruning.py)
