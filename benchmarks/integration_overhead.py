"""What lth_fast costs where users already train, timed in alternation in one process (medians
of per-round ratios, as benchmarks/paired_sgd.py does). Two parts:

1. One optimizer step over a model-shaped list (workloads "transformer", --params):
   torch AdamW (its default foreach step) alone; the same AdamW with Pruner.attach (its hook
   pass); MaskedAdamW; and, as the yardstick, one fused zeroing pass (rewind_) over the
   weights and both moments. attach's extra time is reported in units of that pass.
2. Whole training steps in Lightning's Trainer.fit (an MLP, batch 256) and in the Hugging Face
   Trainer (a 2-layer GPT-2): torch AdamW with no callback, the same loop without lth_fast;
   then MaskedAdamW with the LotteryTicket callback, and AdamW with the callback (masked
   through attach). The overhead is the per-step time over that of the plain loop.

    python benchmarks/integration_overhead.py [--params 10M] [--rounds 15] [--out PREFIX]
"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone

import torch
from torch import nn

import lth_fast
from lth_fast import MaskedAdamW, Pruner
from lth_fast.bench import time_op, workloads
from lth_fast.ops import zero_pruned
from machine import cpu_model


def _median(xs):
    return statistics.median(xs)


def optimizer_steps(params_size: str, rounds: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    shapes = workloads.SHAPES["transformer"](workloads.parse_size(params_size))

    def params():
        ps = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gen)
        return ps

    module = nn.Module()
    plain, hooked, masked = params(), params(), params()
    for i, p in enumerate(hooked):
        module.register_parameter(f"w{i}", p)
    pruner = Pruner._for_names(module, [f"w{i}" for i in range(len(hooked))])
    pruner.prune(0.5)
    masks = {p: pruner.masks[f"w{i}"] for i, p in enumerate(masked)}
    opts = {"adamw": torch.optim.AdamW(plain, lr=1e-3),
            "adamw+attach": torch.optim.AdamW(hooked, lr=1e-3),
            "masked_adamw": MaskedAdamW(masked, lr=1e-3, masks=masks)}
    pruner.attach(opts["adamw+attach"])
    for opt in opts.values():
        opt.step()  # creates the state: every timed step is a steady one
    state = opts["adamw+attach"].state
    tensors = [t for p in hooked for t in (p.detach(), state[p]["exp_avg"],
                                           state[p]["exp_avg_sq"])]
    tmasks = [pruner.masks[f"w{i}"] for i in range(len(hooked)) for _ in range(3)]
    zero_pass = zero_pruned(tensors, tmasks)

    def timed(fn):
        return time_op(fn, reps=1, warmup=0, device="cpu")[0]

    times = {k: [] for k in list(opts) + ["zero pass"]}
    for _ in range(rounds):
        for k, opt in opts.items():
            times[k].append(timed(opt.step))
        times["zero pass"].append(timed(zero_pass))
    base = times["adamw"]
    extra = [(a - b) / z for a, b, z in zip(times["adamw+attach"], base, times["zero pass"])]
    return {"params": sum(p.numel() for p in plain), "rounds": rounds,
            "median_ms": {k: 1e3 * _median(v) for k, v in times.items()},
            "ratio_to_adamw": {k: _median([a / b for a, b in zip(v, base)])
                               for k, v in times.items() if k != "adamw"},
            "attach_extra_in_zero_passes": _median(extra)}


def lightning_steps(rounds: int, steps: int = 40) -> dict:
    import lightning as L
    from lth_fast.integrations.lightning import LotteryTicket

    class MLP(L.LightningModule):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                                     nn.ReLU(), nn.Linear(1024, 10))

        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            cls = MaskedAdamW if self.kind == "masked" else torch.optim.AdamW
            return cls(self.parameters(), lr=1e-3)

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(256 * steps, 784, generator=g),
                                          torch.randint(0, 10, (256 * steps,), generator=g))
    loader = torch.utils.data.DataLoader(data, batch_size=256)

    def fit(kind, callback):
        torch.manual_seed(0)
        model = MLP(kind)
        cbs = [LotteryTicket(levels=1, epochs_per_level=1)] if callback else []
        trainer = L.Trainer(max_epochs=1, callbacks=cbs, accelerator="cpu", devices=1,
                            enable_progress_bar=False, enable_model_summary=False, logger=False,
                            enable_checkpointing=False)
        if callback:  # density 80%: the level-0 masks pruned once, as inside IMP
            cbs[0].imp.setup(model)
            cbs[0].imp.pruner.prune(0.2)
        t0 = time.perf_counter()
        trainer.fit(model, loader)
        return (time.perf_counter() - t0) / steps

    runs = {"adamw, no lth_fast": ("adamw", False),
            "masked_adamw + LotteryTicket": ("masked", True),
            "adamw + LotteryTicket (attach)": ("adamw", True)}
    for kind, cb in runs.values():
        fit(kind, cb)  # warm-up: imports, allocator
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, (kind, cb) in runs.items():
            times[k].append(fit(kind, cb))
    base = times["adamw, no lth_fast"]
    return {"steps_per_fit": steps, "rounds": rounds, "batch": 256,
            "model_params": sum(p.numel() for p in MLP("adamw").parameters()),
            "median_ms_per_step": {k: 1e3 * _median(v) for k, v in times.items()},
            "overhead_vs_plain": {k: _median([a / b for a, b in zip(v, base)]) - 1.0
                                  for k, v in times.items() if k != "adamw, no lth_fast"}}


def hf_steps(rounds: int, steps: int = 30) -> dict:
    import transformers
    from lth_fast.integrations.hf import LotteryTicket

    transformers.logging.set_verbosity_error()
    cfg = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=256,
                                  n_positions=64, bos_token_id=0, eos_token_id=0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (16 * steps, 64), generator=g)
    data = [{"input_ids": x, "labels": x} for x in ids]

    def train(kind, callback, out):
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(cfg)
        cbs = [LotteryTicket(levels=1, epochs_per_level=1)] if callback else []
        opts = (MaskedAdamW(model.parameters(), lr=1e-3), None) if kind == "masked" else \
            (None, None)
        args = transformers.TrainingArguments(out, num_train_epochs=1,
                                              per_device_train_batch_size=16, learning_rate=1e-3,
                                              lr_scheduler_type="constant", save_strategy="no",
                                              report_to=[], use_cpu=True, disable_tqdm=True)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                       callbacks=cbs, optimizers=opts)
        t0 = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - t0) / steps

    runs = {"adamw, no lth_fast": ("adamw", False),
            "masked_adamw + LotteryTicket": ("masked", True),
            "adamw + LotteryTicket (attach)": ("adamw", True)}
    with tempfile.TemporaryDirectory() as out:
        for kind, cb in runs.values():
            train(kind, cb, out)
        times = {k: [] for k in runs}
        for _ in range(rounds):
            for k, (kind, cb) in runs.items():
                times[k].append(train(kind, cb, out))
    base = times["adamw, no lth_fast"]
    return {"steps_per_train": steps, "rounds": rounds, "batch": 16, "context": 64,
            "model_params": sum(p.numel() for p in transformers.GPT2LMHeadModel(cfg).parameters()),
            "median_ms_per_step": {k: 1e3 * _median(v) for k, v in times.items()},
            "overhead_vs_plain": {k: _median([a / b for a, b in zip(v, base)]) - 1.0
                                  for k, v in times.items() if k != "adamw, no lth_fast"}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="10M")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--loop-rounds", type=int, default=5, help="rounds of the training loops")
    ap.add_argument("--out", help="write PREFIX.json and PREFIX.md")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"cpu": cpu_model(), "torch": torch.__version__, "cpu_isa": lth_fast.cpu_isa(),
              "threads": torch.get_num_threads(), "commit": commit,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "optimizer_step": optimizer_steps(args.params, args.rounds),
              "lightning": lightning_steps(args.loop_rounds),
              "hf": hf_steps(args.loop_rounds)}
    md = to_markdown(result)
    print(md)
    if args.out:
        with open(args.out + ".json", "w") as f:
            json.dump(result, f, indent=1)
        with open(args.out + ".md", "w") as f:
            f.write(md)


def to_markdown(r: dict) -> str:
    o, lt = r["optimizer_step"], r["lightning"]
    lines = ["# Where users train: the cost of attach and of the Lightning callback",
             "", f"lscpu model name \"{r['cpu']}\"; torch {r['torch']}, cpu_isa {r['cpu_isa']}, "
             f"{r['threads']} threads; commit {r['commit']}; {r['date']}.", "",
             f"## One optimizer step, {o['params'] / 1e6:.1f}M parameters (transformer-shaped "
             f"list, half pruned), medians of {o['rounds']} alternating rounds", "",
             "| step | median ms | × torch AdamW (median of per-round ratios) |",
             "|---|---:|---:|"]
    for k, v in o["median_ms"].items():
        ratio = "1" if k == "adamw" else f"{o['ratio_to_adamw'][k]:.2f}"
        lines.append(f"| {k} | {v:.2f} | {ratio} |")
    lines += ["", f"attach's extra time over AdamW alone: "
              f"{o['attach_extra_in_zero_passes']:.2f} zeroing passes over the weights and "
              f"both moments (the pass it adds; target: at most 1).", "",
              f"## Training steps in Lightning's Trainer.fit (MLP 784-1024-1024-10, "
              f"{lt['model_params'] / 1e6:.2f}M parameters, batch {lt['batch']}, "
              f"{lt['steps_per_fit']} steps per fit, {lt['rounds']} alternating rounds)", "",
              "| loop | median ms per step | overhead over the plain loop |", "|---|---:|---:|"]
    lines += _loop_rows(lt)
    hf = r["hf"]
    lines += ["", f"## Training steps in the Hugging Face Trainer (GPT-2, 2 layers, 128 wide, "
              f"{hf['model_params'] / 1e6:.2f}M parameters, batch {hf['batch']} x "
              f"{hf['context']} tokens, {hf['steps_per_train']} steps per train(), "
              f"{hf['rounds']} alternating rounds)", "",
              "| loop | median ms per step | overhead over the plain loop |", "|---|---:|---:|"]
    lines += _loop_rows(hf)
    return "\n".join(lines) + "\n"


def _loop_rows(r: dict) -> list:
    rows = []
    for k, v in r["median_ms_per_step"].items():
        over = "—" if k not in r["overhead_vs_plain"] else \
            f"{100 * r['overhead_vs_plain'][k]:+.1f}%"
        rows.append(f"| {k} | {v:.2f} | {over} |")
    return rows


if __name__ == "__main__":
    main()
