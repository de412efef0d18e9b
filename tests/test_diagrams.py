"""The conceptual diagrams: they draw headless, carry the expected artists, and the DDIM step adds up."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402

from ddim_book import diagrams, samplers  # noqa: E402
from ddim_book.oracles import GaussianMixtureOracle  # noqa: E402
from ddim_book.schedules import NoiseSchedule  # noqa: E402
from ddim_book.subsequences import timesteps  # noqa: E402

SCHEDULE = NoiseSchedule.linear()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _readable(fig: Figure) -> None:
    """At least 110 dpi, and no visible text below 8 pt."""
    assert fig.dpi >= 110
    fig.canvas.draw()  # lays out the legends, so that their texts exist
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert sizes and min(sizes) >= 8


def _arrows(fig: Figure, gid: str) -> list[FancyArrowPatch]:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_gid() == gid]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_ddpm_chain_has_both_chains_and_their_kernels():
    fig = diagrams.ddpm_chain()
    assert isinstance(fig, Figure)
    _readable(fig)
    nodes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "node"]
    assert nodes == [r"$x_0$", r"$x_1$", r"$x_{t-1}$", r"$x_t$", r"$x_T$"]
    # 7 slots (5 nodes, 2 ellipses): one arrow each way between neighbours
    assert len(_arrows(fig, "forward")) == 6 and len(_arrows(fig, "reverse")) == 6
    texts = _texts(fig)
    assert r"$q(x_t \mid x_{t-1})$" in texts and r"$p_\theta(x_{t-1} \mid x_t)$" in texts
    assert len(fig.axes[0].get_legend().get_texts()) == 2


def test_ddim_forward_process_feeds_x0_into_every_node():
    fig = diagrams.ddim_forward_process()
    _readable(fig)
    nodes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "node"]
    assert sorted(nodes) == sorted([r"$x_1$", r"$x_{t-1}$", r"$x_t$", r"$x_T$", r"$x_0$"])
    assert len(_arrows(fig, "chain")) == 5  # x_T -> ... -> x_1 through 6 slots
    assert len(_arrows(fig, "from_x0")) == 4 and len(_arrows(fig, "from_x0_elided")) == 2
    assert r"$q_\sigma(x_{t-1} \mid x_t, x_0)$" in _texts(fig)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("t, prev", [(400, 150), (600, 599), (50, 0)])
@pytest.mark.parametrize("ring", [False, True])
def test_step_parts_add_up_to_ddim_step(eta, t, prev, ring):
    oracle = GaussianMixtureOracle.ring_2d(SCHEDULE) if ring else None
    x_t, z = torch.tensor([0.7, -0.4], dtype=torch.float64), torch.tensor([-1.1, 0.3], dtype=torch.float64)
    parts = diagrams.ddim_step_parts(x_t, t, prev, eta, z, oracle=oracle, schedule=SCHEDULE)
    model = oracle if ring else diagrams.two_gaussians(SCHEDULE)
    eps = model(x_t[None], t)[0]
    a_t, a_prev = SCHEDULE.alpha_bars[t].item(), SCHEDULE.alpha_bars[prev].item()
    want = samplers.ddim_step(x_t[None], eps[None], a_t, a_prev, eta=eta, noise=z[None])[0]
    total = parts.x0_term + parts.direction + parts.noise
    torch.testing.assert_close(total, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(parts.x_prev, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(parts.eps, eps)
    # the first term is sqrt(a_prev) times DDIM eq. (9)'s prediction, written out here
    x0_hat = (x_t - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
    torch.testing.assert_close(parts.x0_term, math.sqrt(a_prev) * x0_hat, rtol=0, atol=1e-12)
    # the direction is parallel to eps, the noise to z
    assert abs(parts.direction[0] * eps[1] - parts.direction[1] * eps[0]) < 1e-12
    assert abs(parts.noise[0] * z[1] - parts.noise[1] * z[0]) < 1e-12
    if eta == 0.0 or prev == 0:
        assert parts.sigma == 0.0 and bool((parts.noise == 0).all())


def test_step_diagram_draws_the_parts_tip_to_tail():
    fig = diagrams.ddim_step_diagram(etas=(0.0, 1.0))
    _readable(fig)
    assert len(fig.axes) == 2 and [p.eta for p in fig.ddim_parts] == [0.0, 1.0]
    for ax, parts in zip(fig.axes, fig.ddim_parts):
        arrows = {a.get_gid(): a for a in ax.texts if isinstance(a, Annotation)}
        expected = {"x0_term", "direction"} | ({"noise"} if parts.sigma > 0 else set())
        assert set(arrows) == expected
        tail = torch.zeros(2, dtype=torch.float64)
        for gid in ("x0_term", "direction", "noise"):
            if gid not in arrows:
                continue
            got_tail, got_tip = (torch.tensor(v, dtype=torch.float64) for v in (arrows[gid].xyann, arrows[gid].xy))
            torch.testing.assert_close(got_tail, tail)
            torch.testing.assert_close(got_tip - got_tail, getattr(parts, gid))
            tail = got_tip
        torch.testing.assert_close(tail, parts.x_prev)  # the last tip is x_prev
        assert ax.get_xlabel() == "coordinate 1"
    assert fig.ddim_parts[0].sigma == 0.0 and fig.ddim_parts[1].sigma > 0.1
    # the same x_t and eps in every panel: only sigma changes
    torch.testing.assert_close(fig.ddim_parts[0].x0_term, fig.ddim_parts[1].x0_term)
    assert len(fig.legends) == 1


def test_step_diagram_rejects_bad_input():
    with pytest.raises(ValueError, match="etas"):
        diagrams.ddim_step_diagram(etas=())
    with pytest.raises(ValueError, match="prev"):
        diagrams.ddim_step_parts(t=100, prev=100)
    with pytest.raises(ValueError, match="x_t"):
        diagrams.ddim_step_parts(x_t=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="eta"):
        diagrams.ddim_step_parts(eta=-1.0)
    with pytest.raises(TypeError, match="schedule"):
        diagrams.ddim_step_parts(schedule="linear")


@pytest.mark.parametrize("T, S", [(1000, 10), (100, 7)])
def test_subsequence_timeline_marks_the_package_timesteps(T, S):
    fig = diagrams.subsequence_timeline(T, S)
    _readable(fig)
    (ax,) = fig.axes
    row_of = {label.get_text(): y for label, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert set(row_of) == {"uniform", "quadratic"}
    for spacing in ("uniform", "quadratic"):
        (dots,) = [line for line in ax.lines if line.get_gid() == f"tau_{spacing}"]
        assert list(dots.get_xdata()) == timesteps(T, S, spacing)
        assert set(dots.get_ydata()) == {row_of[spacing]}  # on the row that carries its name
    # one arc per DDIM step: S steps per row, the last one to t = 0
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 2 * S
    assert ax.get_xlabel() == "timestep t"


def test_subsequence_timeline_rejects_bad_input():
    with pytest.raises(ValueError, match="spacing"):
        diagrams.subsequence_timeline(spacings=("uniform", "cubic"))
    with pytest.raises(ValueError, match="S"):
        diagrams.subsequence_timeline(T=100, S=200)
