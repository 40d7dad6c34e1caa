"""Training under divergence and damaged checkpoints: a non-finite model is never saved, a checkpoint is kept only
after a finite validation (and works: it loads, scores finite and resumes), and a resume after a killed swap or
with a damaged trainer.json ends in a whole checkpoint, computed exactly as a straight run, or one line."""

import json
import math
import os
import shutil
from functools import partial

import pytest
import torch
from helpers import SMALL_TEXT, checkpoints_in, tiny_latent_ar
from safetensors.torch import load_file

import seqlab
from seqlab import SeqlabError, atomic
from seqlab.data import Vocabulary
from seqlab.training import Progress, Trainer, TrainerConfig, TrainingDiverged

VOCAB = Vocabulary.from_text(SMALL_TEXT)
TRAIN = VOCAB.encode(SMALL_TEXT[:8_000])
VALID = VOCAB.encode(SMALL_TEXT[8_000:8_500])
DEAD_PID = 2**22 + 1  # above Linux's largest PID: no live process has it


tiny_model = partial(tiny_latent_ar, VOCAB, cell="gru", hidden_size=8, embedding_dim=4)


def config(**kw) -> TrainerConfig:
    base = dict(steps=4, batch_size=2, window=16, eval_every=2, eval_elements=300, warmup_steps=1)
    return TrainerConfig(**{**base, **kw})


def all_finite(directory) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in load_file(str(directory / "model.safetensors")).values())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder after config()'s 4 steps, trained once for the tests that damage or resume a copy of it."""
    directory = tmp_path_factory.mktemp("trained")
    Trainer(tiny_model(), config(), checkpoints_in(directory)).fit(TRAIN, VALID)
    return directory


def copy_of(trained, tmp_path):
    """``trained`` copied into ``tmp_path``: what ``Trainer(tiny_model(), config(), ...).fit`` leaves there."""
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)


def poison_at(step_to_poison: int, value: float = math.nan):
    """A callback that sets weights to ``value`` after step ``step_to_poison`` (a diverging optimizer step): one
    weight for NaN, every weight for a finite value (a model that still computes, badly)."""

    def callback(trainer, progress):
        if progress.step == step_to_poison:
            with torch.no_grad():
                if math.isnan(value):
                    next(trainer.model.parameters()).view(-1)[0] = value
                else:
                    for p in trainer.model.parameters():
                        p.fill_(value)

    return callback


def test_weights_that_turn_nan_are_never_saved_and_the_last_finite_checkpoint_stays(tmp_path):
    trainer = Trainer(tiny_model(), config(), checkpoints_in(tmp_path), callbacks=[poison_at(4)])
    with pytest.raises(TrainingDiverged, match="training stopped at step 4: parameter .* became NaN or infinite"):
        trainer.fit(TRAIN, VALID)
    assert json.loads((tmp_path / "last" / "trainer.json").read_text())["progress"]["step"] == 2
    assert all_finite(tmp_path / "last") and all_finite(tmp_path)


def test_the_final_checkpoint_between_validations_is_never_non_finite(tmp_path):
    trainer = Trainer(tiny_model(), config(steps=3, eval_every=2), checkpoints_in(tmp_path), callbacks=[poison_at(3)])
    with pytest.raises(TrainingDiverged, match="at step 3"):  # step 3: the budget's save
        trainer.fit(TRAIN, VALID)
    assert json.loads((tmp_path / "last" / "trainer.json").read_text())["progress"]["step"] == 2
    assert all_finite(tmp_path / "last")


def test_save_refuses_a_non_finite_model(tmp_path):
    trainer = Trainer(tiny_model(), config(), checkpoints_in(tmp_path))
    poison_at(0)(trainer, Progress())
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        trainer.save_best(Progress())
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        trainer.save_last(Progress(), None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_validation_stops_training_and_keeps_the_last_checkpoint_that_scored_finite(
    tmp_path, monkeypatch, bad
):
    scores = iter([5.0, bad])
    monkeypatch.setattr(Trainer, "validation_nll", lambda self, valid, limit: next(scores))
    trainer = Trainer(tiny_model(), config(), checkpoints_in(tmp_path))
    with pytest.raises(TrainingDiverged, match=f"at step 4: the validation loss became {bad}; .*step 2.* kept"):
        trainer.fit(TRAIN, VALID)
    for record in ("last/trainer.json", "training.json"):
        progress = json.loads((tmp_path / record).read_text())["progress"]
        assert progress["step"] == 2 and progress["best_valid_nll"] == 5.0
        assert [h["valid_nll"] for h in progress["history"]] == [5.0]


def test_a_first_validation_that_is_not_finite_leaves_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "validation_nll", lambda self, valid, limit: math.nan)
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written yet"):
        Trainer(tiny_model(), config(), checkpoints_in(tmp_path)).fit(TRAIN, VALID)
    assert list(tmp_path.iterdir()) == []  # no "last good" checkpoint that never scored finite


def test_the_checkpoint_kept_after_divergence_loads_scores_finite_and_resumes(tmp_path):
    """The issue's case: weights that blow up but stay finite (lr 1e30) score NaN; what is kept is the step
    before, which evaluates, samples real characters and resumes."""
    blow_up = poison_at(4, 1e30)  # finite weights, a model that no longer computes anything finite
    trainer = Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path), callbacks=[blow_up])
    with pytest.raises(TrainingDiverged, match="at step 4: the validation loss became (nan|inf).*step 2.* kept"):
        trainer.fit(TRAIN, VALID)
    kept = seqlab.load(tmp_path / "last")
    assert math.isfinite(float(kept.log_prob(VALID).mean()))
    assert "\ufffd" not in kept.sample("", 50, seed=0)
    result = Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path)).fit(TRAIN, VALID, resume=True)
    assert result.steps == 6 and all(math.isfinite(h["valid_nll"]) for h in result.history)


def test_a_nan_best_from_an_older_checkpoint_is_not_a_best_to_beat(trained, tmp_path):
    copy_of(trained, tmp_path)
    info_path = tmp_path / "last" / "trainer.json"
    info = json.loads(info_path.read_text())
    info["progress"]["best_valid_nll"] = math.nan  # what the landed code saved after a NaN validation
    info_path.write_text(json.dumps(info))
    result = Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path)).fit(TRAIN, VALID, resume=True)
    assert result.best_valid_nll is not None and math.isfinite(result.best_valid_nll)


@pytest.mark.parametrize(
    "content",
    ["[]", '{"progress": []}', '{"progress": {"step": "x"}}', '{"progress": {"step": 2}}', '"text"'],
    ids=["list", "progress-list", "step-text", "fields-missing", "a-string"],
)
def test_a_corrupted_trainer_json_is_one_line(trained, tmp_path, content):
    copy_of(trained, tmp_path)
    (tmp_path / "last" / "trainer.json").write_text(content)
    with pytest.raises(SeqlabError) as error:
        Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path)).fit(TRAIN, VALID, resume=True)
    assert "trainer.json" in str(error.value) or "last" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda saved: saved.update(extra=1), "unknown key 'extra'"),
        (lambda saved: saved["trainer_config"].update(extra=1), "unknown key trainer_config.extra"),
        (lambda saved: saved["trainer_config"].update(lr=math.nan), "lr must be a finite number"),
        (lambda saved: saved["trainer_config"].update(lr="0.1"), "trainer_config.lr is '0.1'"),
        (lambda saved: saved["trainer_config"].update(batch_size=True), "trainer_config.batch_size is True"),
        (lambda saved: saved["progress"].update(extra=1), "unknown key progress.extra"),
        (lambda saved: saved.update(meta=[1]), "meta is not an object"),
    ],
    ids=["top-level-key", "config-key", "lr-nan", "lr-text", "batch-bool", "progress-key", "meta-list"],
)
def test_an_edited_trainer_json_is_one_line_naming_the_file(trained, tmp_path, edit, fragment):
    copy_of(trained, tmp_path)
    path = tmp_path / "last" / "trainer.json"
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))  # NaN as JSON's NaN, what Python's json module reads back
    with pytest.raises(SeqlabError) as error:
        Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path)).fit(TRAIN, VALID, resume=True)
    assert str(error.value).startswith(f"{path}: ") and fragment in str(error.value), str(error.value)
    assert "damaged or unexpected content" in str(error.value) and "\n" not in str(error.value)


def test_resume_after_a_kill_between_the_swap_renames(tmp_path):
    """The state a SIGKILL leaves between ``last -> .last.old-PID`` and ``.last.tmp-PID -> last``: no last/."""
    constant = dict(schedule="constant")  # the learning rate does not depend on the step budget
    Trainer(tiny_model(), config(**constant), checkpoints_in(tmp_path)).fit(TRAIN, VALID)
    straight = tiny_model()
    Trainer(straight, config(steps=6, **constant), checkpoints_in(tmp_path / "straight")).fit(TRAIN, VALID)
    os.rename(tmp_path / "last", tmp_path / f".last.old-{DEAD_PID}")
    assert atomic.is_complete(tmp_path / f".last.old-{DEAD_PID}")
    resumed = tiny_model()
    result = Trainer(resumed, config(steps=6, **constant), checkpoints_in(tmp_path)).fit(TRAIN, VALID, resume=True)
    assert result.steps == 6 and not (tmp_path / f".last.old-{DEAD_PID}").exists()
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k  # bit-exact, as a straight run
    assert seqlab.load(tmp_path / "last") is not None


def test_a_resumed_run_computes_with_its_carried_state_in_memory_of_its_own(trained, tmp_path):
    """Why a resume after a kill differed from a straight run by 3.7e-9 on another machine: the carried state was
    used where safetensors read it, a view into the file's buffer at an offset of 8 bytes mod 64, while a straight
    run's state is a fresh allocation; a matrix product (``h @ W_hh^T``, the GRU's reference loop) may take another
    path and round differently on such an operand. The resumed state must be a copy laid out as a straight run's."""
    copy_of(trained, tmp_path)
    _, state = Trainer(tiny_model(), config(steps=6), checkpoints_in(tmp_path)).load_last()
    fresh = torch.empty_like(state)  # how torch's allocator places a tensor: a straight run's state
    assert state.data_ptr() % 64 == fresh.data_ptr() % 64 == 0  # safetensors' buffer: 8 mod 64 here
    assert state.is_contiguous() and state.untyped_storage().nbytes() == state.numel() * state.element_size()
