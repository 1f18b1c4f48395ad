"""lth_fast.imp.analyses.seeds / `lth-fast seeds`: several runs' summary.csv combined into mean and spread."""
from __future__ import annotations

import json
import math

import pytest

from lth_fast.cli import main
from lth_fast.imp import preset
from lth_fast.imp.analyses.seeds import combine, format_markdown

HEAD = ("level,remaining,ticket_early_stop_val_loss,ticket_early_stop_iteration,"
        "ticket_test_loss_at_early_stop,reinit_early_stop_val_loss,"
        "reinit_early_stop_iteration,reinit_test_loss_at_early_stop,left:blocks.0.mlp.fc_in.weight")


def write_run(path, rows, seed=0):
    """A run directory of the gpt_pydoc experiment (its config) with these summary rows."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps(preset("gpt_pydoc", seed=seed).to_dict()))
    (path / "summary.csv").write_text(HEAD + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(tmp_path / "s0", ["0,100.0,2.0,900,2.1,,,,100.0",
                                    "1,80.0,1.9,800,2.0,2.2,900,2.3,70.0"])
    b = write_run(tmp_path / "s1", ["0,100.0,2.2,1000,2.3,,,,100.0",
                                    "1,80.0,1.9,700,2.0,2.4,900,2.5,72.0"], seed=1)
    return a, b


def test_mean_and_sample_std_per_level(two_runs):
    rows = combine(two_runs)
    mean, sd, n = rows[0]["ticket_early_stop_val_loss"]
    assert (mean, n) == (pytest.approx(2.1), 2) and sd == pytest.approx(0.2 / math.sqrt(2))
    assert rows[1]["ticket_early_stop_val_loss"][1] == 0.0
    assert rows[0]["reinit_early_stop_val_loss"] is None
    assert rows[1]["left:blocks.0.mlp.fc_in.weight"][0] == pytest.approx(71.0)
    table = format_markdown(rows)
    assert "| 1 | 80.0% | 1.900 ± 0.000 (2.741) | 2.300 ± 0.141 (3.318) |" in table
    assert "| 0 | 100.0% | 2.100 ± 0.141 (3.030) | – |" in table


def test_cli_table_plots_and_errors(two_runs, tmp_path, capsys):
    assert main(["seeds", *map(str, two_runs), "--plot", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "over 2 runs" in out and (tmp_path / "p.png").stat().st_size > 1000
    assert (tmp_path / "p-layers.png").stat().st_size > 1000
    assert main(["seeds", str(tmp_path / "nowhere")]) == 1
    assert "nowhere is not an lth-fast imp run directory" in capsys.readouterr().err
    other = write_run(tmp_path / "other", [], seed=2)
    (other / "summary.csv").write_text("level,remaining\n0,100.0\n")
    assert main(["seeds", str(two_runs[0]), str(other)]) == 1
    assert "not the same experiment" in capsys.readouterr().err
