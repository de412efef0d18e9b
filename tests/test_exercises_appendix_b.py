"""The appendix-B check accepts a DDIMScheduler set up like ddim_sample and rejects the settings that differ."""

import re

import pytest
import torch

from ddim_book.exercises import ExerciseError, appendix_b

diffusers = pytest.importorskip("diffusers")


def make_setup(**overrides):
    """A reader's setup; ``overrides`` change constructor arguments, or step arguments under the key "step"."""
    step_overrides = overrides.pop("step", {})

    def setup(steps, eta, clip_x0, seed):
        config = dict(clip_sample=clip_x0, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
        scheduler = diffusers.DDIMScheduler(**{**config, **overrides})
        step_kwargs = dict(eta=eta, use_clipped_model_output=clip_x0, generator=torch.Generator().manual_seed(seed))
        return scheduler, {**step_kwargs, **step_overrides}

    return setup


def test_the_book_settings_pass():
    assert "all 4 cases passed" in appendix_b.check_scheduler_setup(make_setup())


@pytest.mark.parametrize(
    "mistake, case",
    [
        ({"set_alpha_to_one": False}, "S = 25, eta = 0.5, clip_x0 = True, seed 3"),  # last step lands short of t = 0
        ({"steps_offset": 1}, "S = 25, eta = 0.5, clip_x0 = True, seed 3"),  # every timestep shifted by one
        ({"timestep_spacing": "trailing"}, "S = 25, eta = 0.5, clip_x0 = True, seed 3"),  # another sub-sequence
        ({"clip_sample": True}, "S = 10, eta = 0.0, clip_x0 = False, seed 0"),  # diffusers' default clips
        ({"step": {"use_clipped_model_output": False}}, "S = 25, eta = 0.5, clip_x0 = True, seed 3"),
        ({"step": {"eta": 0.0}}, "S = 25, eta = 0.5, clip_x0 = True, seed 3"),
    ],
)
def test_each_setting_that_differs_fails_and_names_the_case(mistake, case):
    with pytest.raises(ExerciseError, match=re.escape(f"case '{case}'")) as err:
        appendix_b.check_scheduler_setup(make_setup(**mistake))
    assert "Hint:" in str(err.value)


def test_a_setup_that_returns_no_pair_is_reported():
    with pytest.raises(ExerciseError, match=r"expected a pair \(scheduler, step_kwargs\)"):
        appendix_b.check_scheduler_setup(lambda steps, eta, clip_x0, seed: diffusers.DDIMScheduler())
    with pytest.raises(ExerciseError, match="step_kwargs must be a dict"):
        appendix_b.check_scheduler_setup(lambda steps, eta, clip_x0, seed: (diffusers.DDIMScheduler(), [eta]))
