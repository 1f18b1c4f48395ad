"""Which parameters a Pruner prunes.

Eligible: the parameters named in `parameter_names` (default: "weight") that belong directly to
a module of one of `types` (default: Linear, Conv1d/2d/3d, and Hugging Face's Conv1D once
`transformers` is imported, the Linear of its GPT-2) — so biases and norm layers are left alone
unless asked for (parameter_names=("weight", "bias"), or a norm type in `types`). A parameter
shared with a module of another type (a head tied to a token embedding) is not eligible: it is
the embedding too, and is pruned only when that module's type is in `types` as well.
`include` and `exclude` then filter the eligible set; each is one item or a list of items:
  - a string: an fnmatch pattern matched against the qualified parameter name
    ("features.0.weight") and against the qualified name of its module ("features.0");
  - a module class: matches the parameters of modules that are instances of it.
A parameter is pruned when it is eligible, matches some include item (when include is given)
and matches no exclude item. An include item, or an exclude pattern, that matches no eligible
parameter is an error (a typo must not silently prune the wrong layers). A parameter shared by
several modules (tied weights) is taken once, under its first name (as
model.named_parameters() does); an item matches it under any of its names."""
from __future__ import annotations

import fnmatch
import re
import sys
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from torch import nn

DEFAULT_TYPES: Tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
Item = Union[str, type]


def hf_conv1d() -> Optional[type]:
    """transformers' Conv1D (GPT-2's Linear, its weight stored [in, out]) if transformers is
    imported, else None: a model holding one has imported it, so nothing is imported here."""
    utils = sys.modules.get("transformers.pytorch_utils")
    return getattr(utils, "Conv1D", None)


def with_hf_types(types: Sequence[type]) -> Tuple[type, ...]:
    """`types` plus transformers' Conv1D where `types` holds nn.Linear and it is imported."""
    types, conv1d = tuple(types), hf_conv1d()
    return types + (conv1d,) if conv1d and nn.Linear in types and conv1d not in types else types


def _items(what: str, value) -> List[Item]:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, type)) else list(value)
    for i, item in enumerate(items):
        if not isinstance(item, (str, type)):
            raise TypeError(f"Pruner: {what}[{i}] must be a name pattern (str) or a module "
                            f"class, got {type(item).__name__}")
    return items


def _matches(item: Item, param_name: str, module_name: str, module: nn.Module) -> bool:
    if isinstance(item, str):
        return (fnmatch.fnmatchcase(param_name, item)
                or fnmatch.fnmatchcase(module_name, item))
    return isinstance(module, item)


def parameter_uses(model: nn.Module) -> List[Tuple[int, str, str, nn.Module, str]]:
    """Every module attribute holding a parameter, in model order: (id of the parameter,
    qualified name, module name, module, attribute name). A tied parameter appears once per
    module using it."""
    out = []
    for module_name, module in model.named_modules(remove_duplicate=False):
        for local, p in module._parameters.items():
            if p is not None:
                out.append((id(p), f"{module_name}.{local}" if module_name else local,
                            module_name, module, local))
    return out


def eligible_parameters(model: nn.Module, types: Sequence[type],
                        parameter_names: Iterable[str]):
    """{first qualified name: [(qualified name, module name, module), ...]}, in model order:
    every eligible use of each eligible parameter (more than one for tied weights)."""
    first, out, shared_out = {}, {}, set()
    names, types = tuple(parameter_names), tuple(types)
    for pid, name, module_name, module, local in parameter_uses(model):
        key = first.setdefault(pid, name)
        if isinstance(module, types) and local in names:
            out.setdefault(key, []).append((name, module_name, module))
        else:
            shared_out.add(key)  # also used where it is not eligible (e.g. as an embedding)
    return {k: v for k, v in out.items() if k not in shared_out}


class UnmatchedItem(ValueError):
    """An include or exclude item that matches no eligible parameter: `what` ("include" or
    "exclude"), the `item`, and the `eligible` names, for a caller that names its own flag."""

    def __init__(self, what: str, item, eligible, message: str) -> None:
        super().__init__(message)
        self.what, self.item, self.eligible = what, item, eligible


def select_parameters(model: nn.Module, *, include=None, exclude=None,
                      types: Union[type, Sequence[type]] = DEFAULT_TYPES,
                      parameter_names: Union[str, Sequence[str]] = ("weight",)) -> List[str]:
    """The qualified names of the parameters to prune, in model order (see the module doc)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"Pruner: model must be a torch.nn.Module, got {type(model).__name__}")
    types = (types,) if isinstance(types, type) else tuple(types)
    for i, t in enumerate(types):
        if not (isinstance(t, type) and issubclass(t, nn.Module)):
            raise TypeError(f"Pruner: types[{i}] must be an nn.Module subclass, got {t!r}")
    types = with_hf_types(types)
    names = (parameter_names,) if isinstance(parameter_names, str) else tuple(parameter_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"Pruner: parameter_names must be non-empty strings, got {names!r}")
    inc, exc = _items("include", include), _items("exclude", exclude)

    eligible = eligible_parameters(model, types, names)
    matches = lambda item, uses: any(_matches(item, *u) for u in uses)  # noqa: E731
    hint = (f"the eligible parameters are those named {list(names)} of modules of types "
            f"{[t.__name__ for t in types]}; change types= or parameter_names= to widen them")
    for what, items in (("include", inc), ("exclude", exc)):
        for item in items:
            if what == "exclude" and not isinstance(item, str):
                continue  # excluding a type absent from the model is harmless
            if not any(matches(item, uses) for uses in eligible.values()):
                raise UnmatchedItem(what, item, list(eligible),
                                    f"Pruner: {what} item {item!r} matches no eligible "
                                    f"parameter; {hint} (a weight tied to a module of another "
                                    f"type, such as an embedding, is eligible only with that "
                                    f"type too)")
    chosen = [name for name, uses in eligible.items()
              if (not inc or any(matches(i, uses) for i in inc))
              and not any(matches(i, uses) for i in exc)]
    if not chosen:
        raise ValueError(f"Pruner: no parameter to prune in {type(model).__name__}; {hint}")
    return chosen


# an index followed by a module inside the numbered item: "blocks.0.attn.qkv.weight", not the
# item itself ("features.0.weight" is a layer of a Sequential, not a block)
_BLOCK_INDEX = re.compile(r"(^|\.)\d+\.[^.]+\.")


def transformer_weights(model: nn.Module, types: Sequence[type] = (nn.Linear,)) -> List[str]:
    """The selection rule for transformers (Chen et al. 2020): the weights of the Linear layers
    (and of transformers' Conv1D, GPT-2's Linear)
    inside the model's numbered blocks (a qualified name with an index in it:
    "blocks.0.attn.qkv.weight", "encoder.layer.5.output.dense.weight"), so attention and MLP
    matrices are pruned while embeddings, LayerNorms, biases and an output head outside the
    blocks stay dense. A weight shared with any module outside the blocks (a head tied to the
    token embedding) stays dense too. Pass the result as Pruner(model, include=...)."""
    types = with_hf_types(types)
    uses = {}
    for pid, name, module_name, module, local in parameter_uses(model):
        uses.setdefault(pid, []).append((name, module, local))
    chosen = []
    for pid, items in uses.items():
        inside = [bool(_BLOCK_INDEX.search(n)) and isinstance(m, tuple(types)) and loc == "weight"
                  for n, m, loc in items]
        if all(inside):
            chosen.append(items[0][0])
    if not chosen:
        raise ValueError(f"transformer_weights: {type(model).__name__} has no "
                         f"{[t.__name__ for t in types]} weight inside numbered blocks")
    return chosen


def plain_module(model: nn.Module) -> nn.Module:
    """The module a torch.compile wrapper (OptimizedModule, `_orig_mod`) compiles, else the
    model: its parameter names are the plain model's, so masks and tickets move between the
    compiled and the plain model (the parameters are the same tensors)."""
    while isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod
    return model
