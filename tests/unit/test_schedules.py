import pytest
import torch

from fireflow.schedules import check_grid, flux_grid, flux_mu, image_tokens, inversion_grid, linear_grid


def test_flux_grid_1024_matches_reference():
    expected = [1, .9567, .9045, .8403, .7595, .6546, .5128, .3109, 0]
    assert flux_grid(8, image_tokens(128, 128)).tolist() == pytest.approx(expected, abs=5e-5)


def test_flux_grid_512_matches_reference():
    expected = [1, .9293, .8492, .7578, .6525, .5298, .3849, .2115, 0]
    assert flux_grid(8, image_tokens(64, 64)).tolist() == pytest.approx(expected, abs=5e-5)


def test_endpoints_exact_and_mu():
    g = flux_grid(3, 4096)
    assert g[0].item() == 1.0 and g[-1].item() == 0.0
    assert flux_mu(4096) == pytest.approx(1.15) and flux_mu(256) == pytest.approx(0.5)


def test_unshifted_grid_is_linear():
    assert torch.equal(flux_grid(4, 4096, shift=False), linear_grid(4))


def test_inversion_grid_is_reversal():
    g = flux_grid(5, 1024)
    assert torch.equal(inversion_grid(g), torch.flip(g, (0,)))


@pytest.mark.parametrize("bad, needle", [
    ([1.0], "at least 2"),
    ([1.0, float("nan")], "NaN"),
    ([1.0, 0.5, 0.7, 0.0], "strictly"),
    ([1.5, 0.0], "[0, 1]"),
])
def test_check_grid_errors(bad, needle):
    with pytest.raises(ValueError, match=None) as e:
        check_grid(bad)
    assert needle in str(e.value)


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_steps_validated(steps):
    with pytest.raises(ValueError, match="steps"):
        linear_grid(steps)
