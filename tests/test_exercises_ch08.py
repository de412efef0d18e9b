"""The chapter-8 exercise checks accept correct answers and reject the usual mistakes, naming the case."""

import pytest
import torch

from ddim_book import langevin
from ddim_book.exercises import ExerciseError, ch08


def test_references_and_hand_written_answers_pass():
    assert "all 3 cases passed" in ch08.check_langevin_step(langevin.langevin_step)
    assert "all 5 cases passed" in ch08.check_dsm_target(langevin.dsm_target)

    def my_step(points, grad, delta, z):  # any parameter names: arguments are passed by position
        return points + delta / 2 * grad + delta**0.5 * z

    def my_target(noisy, clean, a):
        return (a**0.5 * clean - noisy) / (1 - a)

    assert "passed" in ch08.check_langevin_step(my_step)
    assert "passed" in ch08.check_dsm_target(my_target)


@pytest.mark.parametrize(
    "step, case",
    [
        (lambda x, s, d, z: x + d * s + d**0.5 * z, "step_size = 0.01"),  # drift without the 1/2
        (lambda x, s, d, z: x + d / 2 * s + d * z, "step_size = 0.01"),  # noise scaled by delta, not sqrt(delta)
        (lambda x, s, d, z: x + d / 2 * s, "step_size = 0.01"),  # noise forgotten
    ],
)
def test_langevin_step_mistakes_fail_and_name_the_case(step, case):
    with pytest.raises(ExerciseError, match=f"check_langevin_step, case '2-D points, {case}'") as err:
        ch08.check_langevin_step(step)
    assert "Hint:" in str(err.value)


@pytest.mark.parametrize(
    "target, case",
    [
        (lambda x_t, x0, a: -(x_t - a**0.5 * x0) / (1 - a) ** 0.5, "alpha_bar_t = 0.9999"),  # std, not variance
        (lambda x_t, x0, a: -(x_t - a * x0) / (1 - a), "alpha_bar_t = 0.9999"),  # sqrt(a) forgotten
        (lambda x_t, x0, a: (x_t - a**0.5 * x0) / (1 - a), "alpha_bar_t = 0.9999"),  # sign
    ],
)
def test_dsm_target_mistakes_fail_and_name_the_case(target, case):
    with pytest.raises(ExerciseError, match=f"check_dsm_target, case '2-D points, {case}'") as err:
        ch08.check_dsm_target(target)
    assert "Hint:" in str(err.value)


def test_a_target_that_only_handles_float_alpha_bar_fails_on_the_tensor_case():
    def float_only(x_t, x0, a):
        a = float(a)  # a (4, 1) tensor cannot be turned into one float
        return -(x_t - a**0.5 * x0) / (1 - a)

    with pytest.raises(ExerciseError, match="per sample.*raised"):
        ch08.check_dsm_target(float_only)


def test_hyvarinen_reference_matches_monte_carlo_and_its_minimiser_is_the_gaussian_score():
    # the closed form against a direct average of s'(x) + s(x)^2 / 2 over many samples of N(mean, var)
    g = torch.Generator().manual_seed(0)
    xs = 2.0 + 0.5 * torch.randn(400_000, generator=g, dtype=torch.float64)  # mean 2, var 0.25
    a, b = -1.5, 0.7
    direct = (a + 0.5 * (a * xs + b) ** 2).mean().item()
    assert abs(ch08.hyvarinen_linear(a, b, 2.0, 0.25).item() - direct) < 5e-3
    # at a = -1/var, b = mean/var (the score of N(mean, var)) both partial derivatives vanish
    a_star, b_star = torch.tensor(-4.0, requires_grad=True), torch.tensor(8.0, requires_grad=True)
    grads = torch.autograd.grad(ch08.hyvarinen_linear(a_star, b_star, 2.0, 0.25), (a_star, b_star))
    assert all(abs(gr.item()) < 1e-12 for gr in grads)
    with pytest.raises(ValueError, match="var must be > 0"):
        ch08.hyvarinen_linear(1.0, 0.0, 0.0, 0.0)


def test_new_references_and_hand_written_answers_pass():
    assert "all 4 cases passed" in ch08.check_hyvarinen_linear(ch08.hyvarinen_linear)
    assert "all 4 cases passed" in ch08.check_sliced_score_matching_loss(ch08.sliced_score_matching_loss)

    def my_hyvarinen(slope, shift, mu, sigma2):
        return slope + 0.5 * (slope**2 * (sigma2 + mu**2) + 2 * slope * shift * mu + shift**2)

    def my_sliced(score_fn, points, directions):  # one backward pass for the whole batch
        points = points.detach().requires_grad_(True)
        s = score_fn(points)
        (jt_v,) = torch.autograd.grad((s * directions).sum(), points)
        return ((jt_v * directions).sum(1) + 0.5 * (s * directions).sum(1) ** 2).mean()

    assert "passed" in ch08.check_hyvarinen_linear(my_hyvarinen)
    assert "passed" in ch08.check_sliced_score_matching_loss(my_sliced)


def test_sliced_reference_equals_the_closed_form_for_a_linear_score():
    # for s(x) = A x + b the Jacobian is A everywhere: the loss is mean_b [v_b^T A v_b + (v_b^T (A x_b + b))^2 / 2]
    g = torch.Generator().manual_seed(1)
    A, b = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    x, v = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    s = x @ A.T + b
    closed = (torch.einsum("bi,ij,bj->b", v, A, v) + 0.5 * (v * s).sum(1) ** 2).mean()
    got = ch08.sliced_score_matching_loss(lambda y: y @ A.T + b, x, v)
    assert torch.allclose(got, closed, rtol=1e-12)
    with pytest.raises(ValueError, match="x has shape"):
        ch08.sliced_score_matching_loss(lambda y: y, x, v[:3])


@pytest.mark.parametrize(
    "answer, case",
    [
        (lambda a, b, m, v: -a + 0.5 * (a**2 * (v + m**2) + 2 * a * b * m + b**2), "a = -1, b = 0"),  # trace sign
        (lambda a, b, m, v: a + 0.5 * (a**2 * v + 2 * a * b * m + b**2), "a = -0.5, b = 1"),  # E x^2 taken as var
        (lambda a, b, m, v: a + (a**2 * (v + m**2) + 2 * a * b * m + b**2), "a = -1, b = 0"),  # the 1/2 forgotten
        (lambda a, b, m, v: 0.5 * (a**2 * (v + m**2) + 2 * a * b * m + b**2), "a = -1, b = 0"),  # trace term forgotten
    ],
)
def test_hyvarinen_mistakes_fail_and_name_the_case(answer, case):
    with pytest.raises(ExerciseError, match=f"check_hyvarinen_linear, case 'floats: {case}") as err:
        ch08.check_hyvarinen_linear(answer)
    assert "Hint:" in str(err.value)


def _one_pass(score_fn, x, v):
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    (jt_v,) = torch.autograd.grad((s * v).sum(), x)
    return s.detach(), (jt_v * v).sum(1)


def _variance_reduced(score_fn, x, v):
    s, quad = _one_pass(score_fn, x, v)
    return (quad + 0.5 * (s**2).sum(1)).mean()  # SSM-VR: same expectation over v, different loss


def _half_forgotten(score_fn, x, v):
    s, quad = _one_pass(score_fn, x, v)
    return (quad + ((s * v).sum(1)) ** 2).mean()


def _summed_not_averaged(score_fn, x, v):
    s, quad = _one_pass(score_fn, x, v)
    return (quad + 0.5 * (s * v).sum(1) ** 2).sum()


def _exact_trace(score_fn, x, v):  # the Hutchinson term replaced by the true trace: not the sliced loss
    x = x.detach().requires_grad_(True)
    s = score_fn(x)
    trace = sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return (trace + 0.5 * (s * v).sum(1) ** 2).mean()


@pytest.mark.parametrize(
    "answer, case",
    [
        (_variance_reduced, "linear score in 2-D"),
        (_half_forgotten, "linear score in 2-D"),
        (_summed_not_averaged, "linear score in 2-D"),
        (_exact_trace, "linear score in 2-D"),
    ],
)
def test_sliced_loss_mistakes_fail_and_name_the_case(answer, case):
    with pytest.raises(ExerciseError, match=f"check_sliced_score_matching_loss, case '{case}") as err:
        ch08.check_sliced_score_matching_loss(answer)
    assert "Hint:" in str(err.value)
