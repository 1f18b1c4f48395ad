"""Prints the ratio table from a saved benchmark JSON.

    python benchmarks/ratio_table.py FILE.json

FILE is either `lth-fast bench --json FILE` output (printed as `lth-fast bench` prints it) or
pytest-benchmark's `--benchmark-json FILE` output from this directory's suites (one row per
group: the fast median, GB/s, × floor and the reference's median over the fast one)."""
import json
import sys


def pytest_benchmark_table(data: dict) -> str:
    groups: dict = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"], {})[b["name"].split("[")[0]] = b
    lines = ["| group | median ms | GB/s | × floor | × reference (speedup) |",
             "|---|---:|---:|---:|---:|"]
    for group, runs in groups.items():
        fast = next((b for n, b in runs.items() if n.endswith("_fast")), None)
        ref = next((b for n, b in runs.items() if n.endswith("_reference")), None)
        if fast is None:
            continue
        med, info = fast["stats"]["median"], fast.get("extra_info", {})
        speed = f"{ref['stats']['median'] / med:.1f}×" if ref else "—"
        lines.append(f"| {group} | {1e3 * med:.2f} | {info.get('gbps', float('nan')):.1f} | "
                     f"{info.get('x_floor', float('nan')):.2f} | {speed} |")
    info = data.get("machine_info", {})
    lines += ["", f"machine: {info.get('cpu', {}).get('brand_raw', '?')} · "
              f"{data.get('datetime', '?')} · commit {data.get('commit_info', {}).get('id', '?')}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        data = json.load(f)
    if "benchmarks" in data:
        print(pytest_benchmark_table(data))
    else:
        from lth_fast.bench.report import markdown
        print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
