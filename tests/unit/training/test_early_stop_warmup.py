"""Early stop on a memorisation plateau, and warm-up that never wastes a step on tiny sets."""

import pytest

from mixsd.training.checkpoints import should_stop
from mixsd.training.config import TrainConfig
from mixsd.training.run import warmup_steps


def _h(*values):
    return [{"epoch": i + 1, "memorization": v} for i, v in enumerate(values)]


@pytest.mark.parametrize("values,patience,at,stop", [
    ((0.1, 0.2, 0.3), 2, None, False),          # still rising
    ((0.1, 0.5, 0.4, 0.5), 2, None, True),      # two epochs without a new best
    ((0.1, 0.5, 0.4, 0.6), 2, None, False),     # a new best resets the wait
    ((0.0, 0.0, 0.0), 2, None, False),          # flat at the base level: not a plateau yet
    ((0.0, 0.0, 0.25, 0.2, 0.25), 2, None, True),  # rose, then two epochs without a new best
    ((0.0, 0.0), 2, None, False),               # not enough epochs to tell
    ((0.2, 1.0), 0, 1.0, True),                 # everything memorised
    ((0.2, 0.9), 0, 1.0, False),
    ((0.1, 0.5, 0.4, 0.5), 0, None, False),     # patience 0: never stop on a plateau
])
def test_should_stop(values, patience, at, stop):
    assert should_stop(_h(*values), patience=patience, at=at) is stop


def test_a_probe_below_its_floor_stops_at_once():
    rows = [{"epoch": 1, "memorization": 0.2, "retained/a": 97.0},
            {"epoch": 2, "memorization": 0.4, "retained/a": 89.0}]
    assert should_stop(rows, floors={"retained/a": 90.0})
    assert not should_stop(rows[:1], floors={"retained/a": 90.0})
    assert not should_stop(rows, floors={"retained/b": 90.0})  # not measured: no stop


def test_epochs_without_the_metric_never_stop():
    assert not should_stop([{"epoch": 1, "train_loss": 2.0}], patience=1, at=0.0)


@pytest.mark.parametrize("n,batch,epochs,ratio,expected", [
    (7, 16, 6, 0.03, 0),     # one step an epoch: 0.18 steps of warm-up -> none, not 1 at lr 0
    (100, 16, 6, 0.03, 1),   # 42 steps -> 1
    (1000, 16, 3, 0.1, 18),  # 63 * 3 = 189 -> 18
])
def test_warmup_rounds_down(n, batch, epochs, ratio, expected):
    cfg = TrainConfig(model="m", out="o", targets="t", batch_size=batch, epochs=epochs,
                      warmup_ratio=ratio)
    assert warmup_steps(cfg, n) == expected


def test_explicit_warmup_steps_win():
    cfg = TrainConfig(model="m", out="o", targets="t", warmup_steps=3)
    assert warmup_steps(cfg, 7) == 3


def test_train_stops_on_the_rule_and_a_rerun_trains_nothing(make_config, write_rows, tmp_path):
    from training_helpers import target_rows

    from mixsd.training import train

    seen = []

    def scripted(model, tokenizer, epoch):
        seen.append(epoch)
        return {"memorization": [0.25, 0.5, 0.5, 0.5, 0.9][epoch - 1]}

    cfg = make_config(targets=str(write_rows(target_rows(4))), epochs=5, stop_patience=2)
    result = train(cfg, epoch_callback=scripted)
    assert seen == [1, 2, 3, 4] and result.epochs == 4  # epochs 3 and 4 did not beat 0.5
    again = train(cfg, epoch_callback=scripted)
    assert seen == [1, 2, 3, 4] and again.epochs == 4
