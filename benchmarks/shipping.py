"""A shipped ticket, level by level: how small the file is, how many multiply-adds it needs,
and how fast it runs on this CPU.

For every finished level of an IMP run: the density of the pruned weights; the ticket's test
accuracy at its early stop (summary.csv) and that of the shipped weights (the checkpoint: the
end of training) loaded from each export; the size of the float32 / float16 / bfloat16 exports
against torch.save(model.state_dict()) of the dense model, and the bits each pruned tensor
costs per weight; dense and pruned multiply-adds per example (per token for a GPT); and the
CPU latency of the dense model (level 0) and of the level's ticket run densely: the same dense
kernels over zeros, so no speed-up is expected and none is claimed.

    python benchmarks/shipping.py [RUN_DIR] [--batch 64] [--repeats 200] [--threads 1]
        [--out PREFIX]   (default benchmarks/results/cpu-<kind>-shipping: PREFIX.md, .json)
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

import torch

from lth_fast import atomic
from lth_fast.imp.run_dir import RunDir
from lth_fast.imp.tasks import load_task
from lth_fast.imp import export_run
from lth_fast.shipping import (count_macs, load_exported, measure_latency,
                               read_exported)
from lth_fast.shipping.architecture import example_input
from machine import cpu_model, machine_kind

DTYPES = ("float32", "float16", "bfloat16")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def summary(run_dir) -> dict:
    """{level: (column, value, final)}: the ticket's result at its early stop, and at the end of
    training (that of the checkpoint, which is what is exported) where summary.csv has it."""
    with open(os.path.join(run_dir, "summary.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    col = next(c for c in ("ticket_test_accuracy_at_early_stop", "ticket_test_loss_at_early_stop")
               if c in rows[0])
    final = rows[0].get("ticket_final_test_accuracy") is not None
    return {int(r["level"]): (col, float(r[col]),
                              float(r["ticket_final_test_accuracy"]) if final else None)
            for r in rows}


def level_row(run_dir, level, tmp, args, dense_model, early, task) -> dict:
    row = {"level": level}
    sizes = {}
    for dt in DTYPES:
        info = export_run(run_dir, level, dt, out=os.path.join(tmp, f"l{level}-{dt}.st"))
        ex = read_exported(info["path"])
        pruned_bytes = sum(ex.values[n].numel() * ex.values[n].element_size()
                           + (m.numel() + 7) // 8 for n, m in ex.masks.items())
        sizes[dt] = {"bytes": info["bytes"], "bits_per_pruned_tensor_weight":
                     8 * pruned_bytes / info["total"]}
        row.update(density=info["density"], kept=info["kept"], total=info["total"])
        if task is not None:  # the run's own test split, computed in float32
            shipped = load_exported(info["path"], dtype=torch.float32)
            sizes[dt]["shipped_result"] = task.evaluate(shipped)[2]
    model = load_exported(os.path.join(tmp, f"l{level}-float32.st"))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    row["torch_save_bytes"] = len(buf.getvalue())
    for s in sizes.values():
        s["smaller_than_torch_save_pct"] = 100 * (1 - s["bytes"] / row["torch_save_bytes"])
    row["exports"] = sizes
    row["early_stop"] = dict(zip(("metric", "value", "final"), early.get(level, (None,) * 3)))
    arch = ex.architecture
    one = example_input(arch, 1, tokens=1)  # one example; for a GPT one token
    macs = count_macs(model, one, ex.masks)
    row["macs"] = {"dense": macs["dense"], "pruned": macs["pruned"],
                   "per": "token" if arch["model"] == "gpt" else "example"}
    batch = example_input(arch, args.batch)
    row["latency"] = measure_latency({"dense": dense_model, "pruned_run_densely": model}, batch,
                                     repeats=args.repeats, warmup=args.warmup,
                                     threads=args.threads)
    return row


def to_markdown(r: dict) -> str:
    lines = [f"# Shipping tickets: {r['run_dir']}", "",
             f"lscpu model name \"{r['cpu']}\"; torch {r['torch']}; {r['threads']} thread(s); "
             f"batch {r['batch']}; latency: median of {r['repeats']} alternating calls "
             f"(dense, then the ticket run densely); commit {r['commit']}; {r['date']}.", "",
             "| level | density | ticket at early stop (test acc. or loss) | "
             "shipped fp32 / fp16 / bf16 | "
             "torch.save bytes | fp32 bytes (smaller) | fp16 bytes (smaller) | "
             "bf16 bytes (smaller) | bits/weight fp32 / fp16 | MACs dense | MACs pruned | "
             "dense ms | ticket run densely ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["levels"]:
        e, ex = x["exports"], x["early_stop"]
        shipped = " / ".join(f"{e[d]['shipped_result']:.3f}" if "shipped_result" in e[d]
                             else "–" for d in DTYPES)
        cells = [str(x["level"]), f"{100 * x['density']:.1f}%",
                 "–" if ex["value"] is None else f"{ex['value']:.3f}", shipped,
                 f"{x['torch_save_bytes']:,}"]
        cells += [f"{e[d]['bytes']:,} ({e[d]['smaller_than_torch_save_pct']:.0f}%)"
                  for d in DTYPES]
        cells += [f"{e['float32']['bits_per_pruned_tensor_weight']:.2f} / "
                  f"{e['float16']['bits_per_pruned_tensor_weight']:.2f}",
                  f"{x['macs']['dense']:,}", f"{x['macs']['pruned']:,}",
                  f"{x['latency']['dense']['median_ms']:.3f}",
                  f"{x['latency']['pruned_run_densely']['median_ms']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    same = [x["exports"]["float32"].get("shipped_result") == x["early_stop"]["final"]
            for x in r["levels"] if x["early_stop"]["final"] is not None]
    if same and "shipped_result" in r["levels"][0]["exports"]["float32"]:
        lines += ["", "The float32 export's test accuracy equals summary.csv's final ticket "
                  f"accuracy at {sum(same)} of {len(same)} levels."]
    lines += ["", "MACs: multiply-adds of the Linear/Conv weights per "
              f"{r['levels'][0]['macs']['per']} (pruned: of the kept weights only). "
              "bits/weight: the pruned tensors' bytes in the file (1-bit mask + kept values) "
              "per weight of those tensors. Shipped: the test result of the exported weights "
              "(the checkpoint at the end of training, not the early-stop iteration), "
              "computed in float32. The ticket runs the same dense kernels over zeros: no "
              "speed-up is claimed."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default="runs/lenet_mnist5k-s0")
    ap.add_argument("--levels", help="comma-separated levels (default: every finished one)")
    ap.add_argument("--batch", type=int, default=64, help="examples (sequences) per call")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-accuracy", dest="accuracy", action="store_false",
                    help="skip evaluating the shipped weights on the test split")
    ap.add_argument("--out", help="PREFIX of PREFIX.md and PREFIX.json (default "
                                  "benchmarks/results/cpu-<kind>-shipping)")
    args = ap.parse_args(argv)
    cpu = cpu_model()
    done = len(RunDir(args.run_dir).finished_levels(log=lambda _: None))
    if not done:
        sys.exit(f"{args.run_dir}: no finished level (run lth-fast imp first)")
    levels = ([int(x) for x in args.levels.split(",")] if args.levels else range(done))
    early = summary(args.run_dir)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    result = {"cpu": cpu, "kind": machine_kind(cpu), "torch": torch.__version__,
              "threads": args.threads, "batch": args.batch, "repeats": args.repeats,
              "commit": commit, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "run_dir": args.run_dir, "levels": []}
    task = None
    if args.accuracy:
        task = load_task(RunDir(args.run_dir).read_config())
        task.start("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        export_run(args.run_dir, 0, out=os.path.join(tmp, "dense.st"))
        dense = load_exported(os.path.join(tmp, "dense.st"))
        for level in levels:
            result["levels"].append(level_row(args.run_dir, level, tmp, args, dense, early,
                                               task))
            print(f"level {level} done", file=sys.stderr)
    md = to_markdown(result)
    print(md)
    out = args.out or os.path.join(ROOT, "benchmarks", "results",
                                   f"cpu-{result['kind']}-shipping")
    atomic.write_json(out + ".json", result)
    atomic.write_text(out + ".md", md)


if __name__ == "__main__":
    main()
