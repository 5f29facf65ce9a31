"""The TopK SAE's sparse forward (``embedding_bag`` decode, k-row encoder backward) against the dense one.

``SAE.forward`` for ``model="topk"`` decodes from the k chosen latents only and sends the
gradient back to the k chosen encoder rows only. The slow, obvious reference is the dense
path that every other SAE takes: ``decode(activate(pre_activation(x)))``, the code scattered
into a ``(batch, latent_dim)`` tensor and multiplied by the whole dictionary.
"""

from __future__ import annotations

import pytest
import torch

from lucidae.config import ModelConfig
from lucidae.models import sparse as sparse_module
from lucidae.models.sparse import SAE


class _DenseTopK(SAE):
    """The same model through the dense path: an ``activate`` of its own turns the sparse path off."""

    def activate(self, pre):
        return SAE.activate(self, pre)


def _pair(latent_dim=256, k=5, aux_k=8, dead=()):
    torch.manual_seed(0)
    cfg = ModelConfig(model="topk", input_dim=7, latent_dim=latent_dim, k=k, aux_k=aux_k, dead_window=100)
    fast = SAE(cfg).double()
    with torch.no_grad():  # weights away from the tied start, so that every gradient term matters
        for p in fast.parameters():
            p.add_(0.1 * torch.randn_like(p))
        fast.samples_since_fired[list(dead)] = 10_000
    dense = _DenseTopK(cfg).double()
    dense.load_state_dict(fast.state_dict())
    return fast.train(), dense.train()


def _grads(model, x):
    model.zero_grad(set_to_none=True)
    loss = model.loss(x, x)
    loss.total.backward()
    return loss, {n: p.grad.clone() for n, p in model.named_parameters()}


# marked dead before the step: those that fire in it come back to life, the rest feed the AuxK loss
@pytest.mark.parametrize("dead", [(), tuple(range(256))], ids=["all-alive", "auxk-active"])
def test_sparse_topk_loss_and_gradients_match_the_dense_path(dead):
    fast, dense = _pair(dead=dead)
    x = torch.randn(33, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss_fast, grads_fast = _grads(fast, x)
    loss_dense, grads_dense = _grads(dense, x)
    assert ("aux" in loss_fast.terms) == bool(dead)
    assert not dead or float(loss_fast.terms["aux"]) > 0
    torch.testing.assert_close(loss_fast.total, loss_dense.total, rtol=1e-12, atol=1e-12)
    for name in grads_dense:
        torch.testing.assert_close(grads_fast[name], grads_dense[name], rtol=1e-10, atol=1e-12, msg=name)
    out_fast, out_dense = fast(x), dense(x)
    torch.testing.assert_close(out_fast.latent, out_dense.latent, rtol=0, atol=0)
    torch.testing.assert_close(out_fast.recon, out_dense.recon, rtol=1e-12, atol=1e-12)


def test_sparse_topk_path_is_taken_and_a_wrong_backward_is_caught(monkeypatch):
    fast, dense = _pair()
    x = torch.randn(9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert fast(x).recon.grad_fn.next_functions[0][0].name() == "EmbeddingBagBackward0"
    assert dense(x).recon.grad_fn.name() == "AddmmBackward0"
    _, grads_dense = _grads(dense, x)
    right = sparse_module._TopKValues.backward

    def off_by_a_little(ctx, grad):
        grad_centred, grad_weight, grad_bias, *rest = right(ctx, grad)
        return (grad_centred, grad_weight * (1 + 1e-6), grad_bias, *rest)

    monkeypatch.setattr(sparse_module._TopKValues, "backward", staticmethod(off_by_a_little))
    _, grads_wrong = _grads(fast, x)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(grads_wrong["encoder.weight"], grads_dense["encoder.weight"], rtol=1e-10, atol=1e-12)


def test_sparse_topk_path_falls_back_where_it_cannot_run():
    fast, dense = _pair()
    x = torch.randn(4, 7)  # float32 input to a float64 model: promoted by the bias, as on the dense path
    torch.testing.assert_close(fast(x).recon, dense(x).recon, rtol=0, atol=0)
    fast.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(torch.randn(4, 7))
    assert out.recon.shape == (4, 7)
    with torch.no_grad():
        assert (fast(torch.randn(4, 7)).latent != 0).sum(dim=1).tolist() == [5] * 4
