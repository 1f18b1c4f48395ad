"""The callbacks refuse a trainer whose epoch budget is not their search's, at the start of
fit / train, in one line naming both numbers: fewer epochs would stop IMP inside a level, more
would train on at the last density without a word."""
from __future__ import annotations

import pytest

pytest.importorskip("lightning")

from lth_fast.integrations.lightning import LotteryTicket  # noqa: E402

from tests.helpers.lightning import TinyNet, loader, trainer  # noqa: E402


@pytest.mark.parametrize("max_epochs", [3, 5])
def test_lightning_refuses_another_epoch_budget(max_epochs):
    lt = LotteryTicket(levels=1, epochs_per_level=2)   # 4 epochs: the dense level and one
    with pytest.raises(ValueError) as e:
        trainer(max_epochs, [lt]).fit(TinyNet(), loader())
    assert str(e.value) == (f"LotteryTicket: Trainer(max_epochs) is {max_epochs}, but levels=1 "
                            f"of epochs_per_level=2 take 4 epochs (the dense level and 1 "
                            f"pruned); give Trainer(max_epochs) = 4")
    assert lt.pruner is None or lt.level == 0


def test_hugging_face_refuses_another_epoch_budget(tmp_path):
    transformers = pytest.importorskip("transformers")
    from lth_fast.integrations.hf import LotteryTicket as HFLotteryTicket
    from tests.integrations.test_hf import args, lm_data, tiny_gpt2

    lt = HFLotteryTicket(levels=1, epochs_per_level=1)
    for kw, message in ((dict(epochs=3), "TrainingArguments(num_train_epochs) is 3, but "
                                         "levels=1 of epochs_per_level=1 take 2 epochs"),
                        (dict(epochs=2, max_steps=5), "TrainingArguments(max_steps=5) ends "
                                                      "training by steps")):
        extra = {"max_steps": kw["max_steps"]} if "max_steps" in kw else {}
        t = transformers.Trainer(model=tiny_gpt2(), args=args(tmp_path, kw["epochs"], **extra),
                                 train_dataset=lm_data(), callbacks=[lt])
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            t.train()
