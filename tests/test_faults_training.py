"""Training under divergence and damaged checkpoints: a non-finite model is never saved, NaN never counts as an
improvement, the last finite checkpoint survives, and a resume after a killed swap or with a damaged
trainer.json ends in a whole checkpoint or one line."""

import json
import math
import os

import pytest
import torch
from helpers import SMALL_TEXT
from safetensors.torch import load_file

import seqlab
from seqlab import SeqlabError, atomic
from seqlab.data import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.training import Trainer, TrainerConfig, TrainingDiverged

VOCAB = Vocabulary.from_text(SMALL_TEXT)
TRAIN = VOCAB.encode(SMALL_TEXT[:8_000])
VALID = VOCAB.encode(SMALL_TEXT[8_000:8_500])
DEAD_PID = 2**22 + 1  # above Linux's largest PID: no live process has it


def tiny_model() -> LatentAR:
    torch.manual_seed(0)
    return LatentAR(VOCAB, LatentARConfig(cell="gru", hidden_size=8, embedding_dim=4))


def config(**kw) -> TrainerConfig:
    base = dict(steps=4, batch_size=2, window=16, eval_every=2, eval_chars=300, progress=False, warmup_steps=1)
    return TrainerConfig(**{**base, **kw})


def all_finite(directory) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in load_file(str(directory / "model.safetensors")).values())


def poison_at(step_to_poison: int):
    """An on_step hook that sets one weight to NaN after step ``step_to_poison`` (a diverging optimizer step)."""

    def on_step(trainer, step, loss):
        if step == step_to_poison:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = math.nan

    return on_step


def test_weights_that_turn_nan_are_never_saved_and_the_last_finite_checkpoint_stays(tmp_path):
    trainer = Trainer(tiny_model(), config(), out=tmp_path)
    with pytest.raises(TrainingDiverged, match="training stopped at step 4: parameter .* became NaN or infinite"):
        trainer.fit(TRAIN, VALID, on_step=poison_at(4))
    assert json.loads((tmp_path / "last" / "trainer.json").read_text())["progress"]["step"] == 2
    assert all_finite(tmp_path / "last") and all_finite(tmp_path)


def test_the_final_checkpoint_between_validations_is_never_non_finite(tmp_path):
    trainer = Trainer(tiny_model(), config(steps=3, eval_every=2), out=tmp_path)  # step 3: the budget's save
    with pytest.raises(TrainingDiverged, match="at step 3"):
        trainer.fit(TRAIN, VALID, on_step=poison_at(3))
    assert json.loads((tmp_path / "last" / "trainer.json").read_text())["progress"]["step"] == 2
    assert all_finite(tmp_path / "last")


def test_save_refuses_a_non_finite_model(tmp_path):
    trainer = Trainer(tiny_model(), config(), out=tmp_path)
    poison_at(0)(trainer, 0, 0.0)
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        trainer.save_best({"step": 0})
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        trainer.save_last({"step": 0}, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_validation_loss_is_never_the_best(tmp_path, monkeypatch, bad):
    monkeypatch.setattr(Trainer, "validation_nll", lambda self, valid, limit: bad)
    result = Trainer(tiny_model(), config(), out=tmp_path).fit(TRAIN, VALID)
    assert result.best_valid_nll is None  # no validation was finite: there is no best
    progress = json.loads((tmp_path / "last" / "trainer.json").read_text())["progress"]
    assert progress["best_valid_nll"] is None and progress["bad_validations"] == 2
    assert not (tmp_path / "config.json").exists()  # and no "best model" with a NaN score was saved


def test_a_nan_validation_loss_does_not_block_later_improvements(tmp_path, monkeypatch):
    scores = iter([math.nan, 5.0])  # the first validation is NaN, the second one finite

    monkeypatch.setattr(Trainer, "validation_nll", lambda self, valid, limit: next(scores))
    result = Trainer(tiny_model(), config(), out=tmp_path).fit(TRAIN, VALID)
    assert result.best_valid_nll == 5.0
    saved = json.loads((tmp_path / "training.json").read_text())["progress"]
    assert saved["best_valid_nll"] == 5.0 and saved["step"] == 4


def test_a_nan_best_from_an_older_checkpoint_is_not_a_best_to_beat(tmp_path):
    Trainer(tiny_model(), config(), out=tmp_path).fit(TRAIN, VALID)
    info_path = tmp_path / "last" / "trainer.json"
    info = json.loads(info_path.read_text())
    info["progress"]["best_valid_nll"] = math.nan  # what the landed code saved after a NaN validation
    info_path.write_text(json.dumps(info))
    result = Trainer(tiny_model(), config(steps=6), out=tmp_path).fit(TRAIN, VALID, resume=True)
    assert result.best_valid_nll is not None and math.isfinite(result.best_valid_nll)


@pytest.mark.parametrize(
    "content",
    ["[]", '{"progress": []}', '{"progress": {"step": "x"}}', '{"progress": {"step": 2}}', '"text"'],
    ids=["list", "progress-list", "step-text", "fields-missing", "a-string"],
)
def test_a_corrupted_trainer_json_is_one_line(tmp_path, content):
    Trainer(tiny_model(), config(), out=tmp_path).fit(TRAIN, VALID)
    (tmp_path / "last" / "trainer.json").write_text(content)
    with pytest.raises(SeqlabError) as error:
        Trainer(tiny_model(), config(steps=6), out=tmp_path).fit(TRAIN, VALID, resume=True)
    assert "trainer.json" in str(error.value) or "last" in str(error.value)
    assert "\n" not in str(error.value)


def test_resume_after_a_kill_between_the_swap_renames(tmp_path):
    """The state a SIGKILL leaves between ``last -> .last.old-PID`` and ``.last.tmp-PID -> last``: no last/."""
    constant = dict(schedule="constant")  # the learning rate does not depend on the step budget
    Trainer(tiny_model(), config(**constant), out=tmp_path).fit(TRAIN, VALID)
    straight = tiny_model()
    Trainer(straight, config(steps=6, **constant), out=tmp_path / "straight").fit(TRAIN, VALID)
    os.rename(tmp_path / "last", tmp_path / f".last.old-{DEAD_PID}")
    assert atomic.is_complete(tmp_path / f".last.old-{DEAD_PID}")
    resumed = tiny_model()
    result = Trainer(resumed, config(steps=6, **constant), out=tmp_path).fit(TRAIN, VALID, resume=True)
    assert result.steps == 6 and not (tmp_path / f".last.old-{DEAD_PID}").exists()
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k  # bit-exact, as a straight run
    assert seqlab.load(tmp_path / "last") is not None
