"""Every public function of the core modules is documented, and those that implement an equation cite it."""

import inspect

import pytest

from ddim_book import latents, oracles, samplers, schedules, subsequences

CORE = [schedules, samplers, subsequences, latents, oracles]


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj
            for attr, member in vars(obj).items():
                member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attr}", member


@pytest.mark.parametrize("name, obj", [item for m in CORE for item in _public(m)], ids=lambda v: str(v))
def test_public_callables_have_docstrings(name, obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"{name} has no docstring"


@pytest.mark.parametrize(
    "obj",
    [
        schedules.NoiseSchedule.linear,
        schedules.NoiseSchedule.cosine,
        schedules.NoiseSchedule.q_sample,
        schedules.NoiseSchedule.q_posterior,
        samplers.ddim_step,
        samplers.ddim_sigma,
        samplers.ddim_sample,
        samplers.ddpm_sample,
        samplers.ddim_invert,
        samplers.timesteps,
        samplers.slerp,
    ],
    ids=lambda f: f.__qualname__,
)
def test_equations_are_cited_with_their_chapter(obj):
    doc = inspect.getdoc(obj)
    assert any(k in doc for k in ("eq.", "eqs.", "sec.", "Algorithm")), f"{obj.__qualname__} cites no equation"
    assert "chapter" in doc or "chapter" in inspect.getdoc(inspect.getmodule(obj)), obj.__qualname__
