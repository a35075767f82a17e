"""Tests for the frame synthesiser and the thermal model of the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from camera_core.simframes import ADC_MAX, FrameSynthesizer, ThermalModel


class FakeClock:
    """A manually advanced clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=[False, True], ids=["normal", "fast"])
def synth(request: pytest.FixtureRequest) -> FrameSynthesizer:
    return FrameSynthesizer(128, 96, seed=3, n_stars=15, fast=request.param)


def test_bias_statistics(synth: FrameSynthesizer) -> None:
    frame = synth.frame(10.0, "bias", temperature=20.0)
    assert frame.dtype == np.uint16
    assert frame.shape == (96, 128)
    assert abs(np.median(frame) - 1000.0) <= 1.0
    expected_std = 5.0 / 1.5
    assert frame.std() == pytest.approx(expected_std, rel=0.1)


def test_dark_grows_with_exptime_and_temperature(synth: FrameSynthesizer) -> None:
    synth.cosmic_rate = 0.0
    short = synth.frame(10.0, "dark", temperature=20.0).astype(float)
    long = synth.frame(1000.0, "dark", temperature=20.0).astype(float)
    cold = synth.frame(1000.0, "dark", temperature=-10.0).astype(float)
    # 0.1 e-/s at 0 C doubling every 6 C: 1.008 e-/s at 20 C, 0.0315 at -10 C.
    rate_20 = 0.1 * 2 ** (20 / 6)
    rate_m10 = 0.1 * 2 ** (-10 / 6)
    assert (long.mean() - 1000) * 1.5 == pytest.approx(rate_20 * 1000, rel=0.02)
    assert (short.mean() - 1000) * 1.5 == pytest.approx(rate_20 * 10, abs=0.5)
    assert (cold.mean() - 1000) * 1.5 == pytest.approx(rate_m10 * 1000, rel=0.1)
    assert long.mean() > short.mean() + 500
    assert cold.mean() < long.mean() - 500


def test_dark_has_no_light(synth: FrameSynthesizer) -> None:
    synth.cosmic_rate = 0.0
    frame = synth.frame(100.0, "dark", temperature=-30.0)
    # Shutter closed: no stars, only bias, read noise and a tiny dark current.
    assert frame.max() < 1000 + 10 * 5.0 / 1.5


def test_object_has_stars(synth: FrameSynthesizer) -> None:
    frame = synth.frame(10.0, "object", temperature=-20.0)
    background = np.median(frame)
    # Sky 20 e-/s for 10 s -> ~133 ADU above bias, a bit less vignetted.
    assert 1000 + 100 < background < 1000 + 140
    assert frame.max() > background + 5000
    # Stars are compact: most pixels are background.
    assert np.mean(frame > background + 100) < 0.1


def test_star_field_depends_on_seed_only() -> None:
    a = FrameSynthesizer(64, 64, seed=5)
    b = FrameSynthesizer(64, 64, seed=5)
    b.frame(1.0, "dark")  # a different call sequence does not move the stars
    c = FrameSynthesizer(64, 64, seed=6)
    assert np.array_equal(a.star_rate, b.star_rate)
    assert not np.array_equal(a.star_rate, c.star_rate)


def test_flat_shows_vignetting(synth: FrameSynthesizer) -> None:
    frame = synth.frame(1.0, "flat", temperature=-20.0).astype(float) - 1000
    centre = frame[40:56, 56:72].mean()
    corner = frame[:6, :6].mean()
    assert centre == pytest.approx(20000 / 1.5, rel=0.02)
    assert 0.75 < corner / centre < 0.88


def test_binning_halves_shape_and_sums(synth: FrameSynthesizer) -> None:
    synth.cosmic_rate = 0.0
    unbinned = synth.frame(1.0, "flat").astype(float) - 1000
    binned = synth.frame(1.0, "flat", binning=(2, 2))
    assert binned.shape == (48, 64)
    assert binned.dtype == np.uint16
    ratio = (binned.astype(float) - 1000).mean() / unbinned.mean()
    assert ratio == pytest.approx(4.0, rel=0.02)


def test_binning_asymmetric_and_saturates() -> None:
    synth = FrameSynthesizer(64, 64, fast=False, cosmic_rate=0.0)
    # 1 s flat: ~13000 ADU per pixel, far above 65535 when 4x2 binned, but
    # each pixel is below its full well.
    assert synth.frame(1.0, "flat").max() < 20000
    frame = synth.frame(1.0, "flat", binning=(4, 2))
    assert frame.shape == (32, 16)
    assert frame.max() == ADC_MAX


def test_roi_shape_and_content(synth: FrameSynthesizer) -> None:
    frame = synth.frame(1.0, "flat", area=(11, 40, 21, 30))
    assert frame.shape == (10, 30)
    binned = synth.frame(1.0, "flat", area=(1, 33, 1, 33), binning=(2, 2))
    assert binned.shape == (16, 16)  # the partial bin is dropped


@pytest.mark.parametrize("area", [(0, 10, 1, 10), (1, 129, 1, 10), (5, 4, 1, 2)])
def test_roi_outside_sensor(synth: FrameSynthesizer, area: tuple) -> None:
    with pytest.raises(ValueError):
        synth.frame(1.0, "object", area=area)


def test_invalid_image_type(synth: FrameSynthesizer) -> None:
    with pytest.raises(ValueError, match="image_type"):
        synth.frame(1.0, "twilight")


def test_saturation(synth: FrameSynthesizer) -> None:
    frame = synth.frame(1000.0, "flat")
    assert frame.dtype == np.uint16
    assert np.all(frame == ADC_MAX)
    stars = synth.frame(3000.0, "object")
    assert stars.max() == ADC_MAX


def test_cosmic_rays_scale_with_exptime() -> None:
    synth = FrameSynthesizer(128, 128, seed=1, cosmic_rate=1e-4, dark_current=0.0)

    def hits(exptime: float) -> int:
        return int(np.sum(synth.frame(exptime, "dark") > 1000 + 500))

    short, long = hits(1.0), hits(20.0)
    assert long > 5 * max(short, 1)
    assert hits(0.0) == 0
    bias = synth.frame(100.0, "bias")
    assert np.sum(bias > 1000 + 500) == 0


@pytest.mark.parametrize("fast", [False, True])
def test_deterministic_by_seed(fast: bool) -> None:
    a = FrameSynthesizer(64, 48, seed=11, fast=fast)
    b = FrameSynthesizer(64, 48, seed=11, fast=fast)
    c = FrameSynthesizer(64, 48, seed=12, fast=fast)
    seq = [(5.0, "object"), (0.0, "bias"), (3.0, "dark")]
    for exptime, image_type in seq:
        fa = a.frame(exptime, image_type)
        fb = b.frame(exptime, image_type)
        assert np.array_equal(fa, fb)
        assert not np.array_equal(fa, c.frame(exptime, image_type))
    # Consecutive frames differ.
    assert not np.array_equal(a.frame(0, "bias"), a.frame(0, "bias"))


def test_fast_matches_normal_statistics() -> None:
    kwargs = {"seed": 2, "cosmic_rate": 0.0, "n_stars": 20}
    normal = FrameSynthesizer(128, 128, **kwargs)
    fast = FrameSynthesizer(128, 128, fast=True, **kwargs)
    for image_type, exptime in [("bias", 0.0), ("flat", 1.0), ("object", 30.0)]:
        fn = normal.frame(exptime, image_type).astype(float)
        ff = fast.frame(exptime, image_type).astype(float)
        assert fn.shape == ff.shape
        assert ff.mean() == pytest.approx(fn.mean(), rel=0.01)
        assert np.median(ff) == pytest.approx(np.median(fn), rel=0.002)
        # Noise of the flat: sqrt(20000 + 25) e- -> ~94 ADU in both modes.
    flat_n = normal.frame(1.0, "flat")[48:80, 48:80].astype(float)
    flat_f = fast.frame(1.0, "flat")[48:80, 48:80].astype(float)
    assert flat_f.std() == pytest.approx(flat_n.std(), rel=0.15)


def test_thermal_model_finite_rate() -> None:
    clock = FakeClock()
    model = ThermalModel(ambient=20.0, rate=1.0, clock=clock, tau=5.0)
    assert model.temperature == 20.0
    assert model.cooler_power == 0.0
    model.set_point = -10.0
    assert model.temperature == 20.0  # no time has passed
    clock.advance(10.0)
    assert model.temperature == pytest.approx(10.0)  # slewing at 1 C/s
    clock.advance(15.0 + 5.0)  # 5 C (rate * tau) away, then one tau
    assert model.temperature == pytest.approx(-10.0 + 5.0 * np.exp(-1))
    clock.advance(100.0)
    assert model.temperature == pytest.approx(-10.0, abs=0.01)
    model.set_point = None
    clock.advance(5.0)
    assert model.temperature == pytest.approx(-5.0)
    clock.advance(1000.0)
    assert model.temperature == pytest.approx(20.0, abs=0.01)


def test_thermal_model_time_factor() -> None:
    clock = FakeClock()
    model = ThermalModel(ambient=20.0, rate=1.0, clock=clock, time_factor=0.01)
    model.set_point = 0.0
    clock.advance(0.1)  # 10 simulated seconds
    assert model.temperature == pytest.approx(10.0)


def test_thermal_model_min_temperature() -> None:
    clock = FakeClock()
    model = ThermalModel(ambient=20.0, min_temp=-40.0, clock=clock)
    model.set_point = -80.0
    clock.advance(1000.0)
    assert model.temperature == pytest.approx(-40.0, abs=0.01)
    assert model.cooler_power == 100.0


def test_cooler_power_higher_when_colder() -> None:
    clock = FakeClock()
    model = ThermalModel(ambient=20.0, min_temp=-40.0, clock=clock)
    model.set_point = 10.0
    clock.advance(1000.0)
    warm_power = model.cooler_power
    model.set_point = -25.0
    clock.advance(1.0)
    assert model.cooler_power == 100.0  # pulling down hard
    clock.advance(1000.0)
    cold_power = model.cooler_power
    assert 0 < warm_power < cold_power < 100
    assert cold_power == pytest.approx(100 * 45 / 60, abs=1)


def test_never_settle_stalls() -> None:
    clock = FakeClock()
    model = ThermalModel(ambient=20.0, clock=clock)
    model.never_settle = True
    model.set_point = -10.0
    clock.advance(10_000.0)
    assert model.temperature == pytest.approx(-7.0, abs=0.01)
    assert model.cooler_power == 100.0
    model.never_settle = False
    clock.advance(10_000.0)
    assert model.temperature == pytest.approx(-10.0, abs=0.01)
