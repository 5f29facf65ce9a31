import numpy as np
import pytest

from lucidae import AutoEncoder
from lucidae.applications import generate as gen
from lucidae.applications.compress import psnr
from lucidae.errors import ConfigError


def test_psnr_matches_hand_computation():
    a = np.zeros((2, 2))
    b = np.array([[0.1, 0.1], [0.1, 0.1]])
    assert psnr(a, b) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(a, b, peak=255) == pytest.approx(20 * np.log10(2550))
    assert psnr(a, a) == float("inf")


def test_denoising_autoencoder_gains_psnr_on_noisy_digits(digits):
    X = digits.X
    train, test = X[:1500], X[1500:]
    ae = AutoEncoder(latent_dim=24, epochs=25, noise="gaussian", noise_level=0.3, verbose=0, random_state=0).fit(train)
    noisy = gen.add_noise(test, 0.3, random_state=1)
    result = gen.denoising_gain(ae, test, noisy)
    assert result["psnr_noisy"] == pytest.approx(psnr(test, noisy))
    assert result["psnr_denoised"] == pytest.approx(psnr(test, ae.reconstruct(noisy)))
    # noise of 0.3 on [0, 1] pixels: about 11.9 dB before; the model wins back more than 2.5 dB
    assert result["gain_db"] > 2.5, result


def test_add_noise_has_the_asked_standard_deviation():
    X = np.full((200, 50), 0.5, np.float32)
    noisy = gen.add_noise(X, 0.1, random_state=0, clip=False)
    assert np.std(noisy - X) == pytest.approx(0.1, rel=0.02)
    with pytest.raises(ConfigError, match="level=-1"):
        gen.add_noise(X, -1)


@pytest.fixture(scope="module")
def small_ae(digits):
    return AutoEncoder(latent_dim=6, epochs=3, verbose=0, random_state=0).fit(digits.X, image_shape=(8, 8))


def test_interpolation_ends_at_the_reconstructions(small_ae, digits):
    a, b = digits.X[0], digits.X[10]
    strip = gen.interpolation(small_ae, a, b, steps=6)
    assert strip.shape == (6, 8, 8)
    np.testing.assert_allclose(strip[0].ravel(), small_ae.reconstruct(a[None])[0], atol=1e-5)
    np.testing.assert_allclose(strip[-1].ravel(), small_ae.reconstruct(b[None])[0], atol=1e-5)
    # the midpoint decodes the mean of the two codes
    z = small_ae.transform(np.stack([a, b]))
    mid = gen.interpolation(small_ae, a, b, steps=3)[1].ravel()
    np.testing.assert_allclose(mid, small_ae.inverse_transform(z.mean(0, keepdims=True))[0], atol=1e-5)
    with pytest.raises(ConfigError, match="steps=1"):
        gen.interpolation(small_ae, a, b, steps=1)


def test_vae_samples_and_strips(digits):
    from lucidae.estimators import VAE

    vae = VAE(latent_dim=4, beta=1.0, epochs=4, verbose=0, random_state=0).fit(digits.X, image_shape=(8, 8))
    s = gen.samples(vae, 8, random_state=0)
    assert s.shape == (8, 8, 8) and np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
    np.testing.assert_array_equal(s, gen.samples(vae, 8, random_state=0))  # seeded
    line = gen.interpolation(vae, digits.X[0], digits.X[1], steps=5)
    assert line.shape == (5, 8, 8)
    fig = gen.image_strips({"samples": s, "0 -> 1": line})
    assert len(fig.axes) == 2 * 8
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ConfigError, match="no prior"):
        gen.samples(AutoEncoder(), 3)
