"""The exported folders against SAELens itself: sae_lens loads what lucidae writes, and lucidae what it writes.

``tests/test_interop.py`` checks the layouts against SAELens's formulas computed from the
tensors alone; this file runs the real library (``.ci/run`` installs ``sae-lens``), so a
layout that the formula accepts but SAELens's loader does not would fail here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lucidae import SparseAutoEncoder, TopKAutoEncoder
from lucidae.interop import from_saelens, to_saelens

sae_lens = pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "expected_class"),
    [
        (lambda: TopKAutoEncoder(latent_dim=32, k=4, epochs=2, verbose=0, random_state=0), "TopKSAE"),
        (lambda: SparseAutoEncoder(latent_dim=32, epochs=2, verbose=0, random_state=0), "StandardSAE"),
    ],
)
def test_sae_lens_loads_an_export_and_reconstructs_as_lucidae_does(X, tmp_path, make, expected_class):
    est = make().fit(X)
    to_saelens(est, tmp_path / "export")
    sae = sae_lens.SAE.load_from_disk(tmp_path / "export")
    assert type(sae).__name__ == expected_class
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(X))
        recon = sae.decode(codes)
    np.testing.assert_allclose(codes.numpy(), est.transform(X), atol=1e-5)
    np.testing.assert_allclose(recon.numpy(), est.reconstruct(X), atol=1e-5)

    # and back: what SAELens saves, lucidae reads to the same reconstructions
    sae.save_model(tmp_path / "resaved")
    np.testing.assert_allclose(from_saelens(tmp_path / "resaved").reconstruct(X), recon.numpy(), atol=1e-5)


def test_a_jumprelu_sae_saved_by_sae_lens_reconstructs_the_same_in_lucidae(X, tmp_path):
    sae = sae_lens.JumpReLUSAE(sae_lens.JumpReLUSAEConfig(d_in=16, d_sae=32))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        sae.threshold.copy_(torch.rand(32) * 0.5)  # thresholds that switch some latents off
        codes = sae.encode(torch.from_numpy(X))
        recon = sae.decode(codes)
    assert 0 < int((codes == 0).sum()) < codes.numel()
    sae.save_model(tmp_path / "jumprelu")
    est = from_saelens(tmp_path / "jumprelu")
    assert type(est).__name__ == "JumpReLUAutoEncoder"
    np.testing.assert_allclose(est.transform(X), codes.numpy(), atol=1e-5)
    np.testing.assert_allclose(est.reconstruct(X), recon.numpy(), atol=1e-5)
