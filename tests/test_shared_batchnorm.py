"""BatchNorm over a local group's whole batch (engine/shared_batchnorm.py): two ranks holding half a batch each must
compute what one BatchNorm computes over the whole batch, forward and backward, with threads for the ranks."""
import copy

import pytest
import torch
from test_shared_mean import on_every_rank, ranks_on_one_buffer

from gan_core.engine.shared_batchnorm import share_batchnorm


@pytest.mark.parametrize("layer, shape", [(torch.nn.BatchNorm1d(6), (8, 6)), (torch.nn.BatchNorm2d(3), (8, 3, 5, 5))])
def test_two_halves_normalise_as_the_whole_batch(layer, shape):
    torch.manual_seed(0)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
    x = torch.randn(shape) * 3 + 1
    g = torch.randn(shape)  # the loss: sum(y * g)
    whole = copy.deepcopy(layer).train()
    x_whole = x.clone().requires_grad_(True)
    y_whole = whole(x_whole)
    (y_whole * g).sum().backward()

    ranks = ranks_on_one_buffer(2, capacity=64)
    halves = [copy.deepcopy(layer).train() for _ in ranks]
    for net, shared in zip(halves, ranks):
        assert share_batchnorm(net, shared) == 1

    def work(shared):
        r = shared.rank
        part = x[r * 4:(r + 1) * 4].clone().requires_grad_(True)
        y = halves[r](part)
        (y * g[r * 4:(r + 1) * 4]).sum().backward()
        return y.detach(), part.grad
    (y0, dx0), (y1, dx1) = on_every_rank(ranks, work)
    torch.testing.assert_close(torch.cat([y0, y1]), y_whole.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat([dx0, dx1]), x_whole.grad, rtol=1e-4, atol=1e-5)
    for name in ("weight", "bias"):  # each rank's share; the gradient average sums them (here: a sum loss)
        got = getattr(halves[0], name).grad + getattr(halves[1], name).grad
        torch.testing.assert_close(got, getattr(whole, name).grad, rtol=1e-4, atol=1e-5)
    for net in halves:  # running statistics of the whole batch, on every rank
        torch.testing.assert_close(net.running_mean, whole.running_mean, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(net.running_var, whole.running_var, rtol=1e-4, atol=1e-6)
        net.eval()
        torch.testing.assert_close(net(x), whole.eval()(x), rtol=1e-4, atol=1e-5)  # eval: no meeting at all
