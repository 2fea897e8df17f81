"""Memory layout of 3-D networks (radpersona.device): channels_last_3d on the CPU changes speed, not results."""

from __future__ import annotations

import torch

from radpersona.device import as_layout, memory_format, place
from radpersona.fingerprint.model import build_fingerprint_net


def test_cpu_layout_is_channels_last_and_cuda_contiguous() -> None:
    assert memory_format(torch.device("cpu")) == torch.channels_last_3d
    assert memory_format(torch.device("cuda")) == torch.contiguous_format


def test_place_and_as_layout_give_the_cpu_layout() -> None:
    cpu = torch.device("cpu")
    conv = place(torch.nn.Conv3d(3, 4, 3), cpu)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not conv.weight.is_contiguous()  # the layout really changed (a 3x3x3 kernel over 3 channels)
    x = as_layout(torch.randn(2, 3, 4, 6, 6), cpu)
    assert x.is_contiguous(memory_format=torch.channels_last_3d)


def test_usage_predictor_gives_the_same_usage_and_gradients_in_either_layout() -> None:
    """The fingerprint network placed channels_last_3d computes what the contiguous one computes: in float64
    the same u, logit and gradients of the loss to 1e-9 (in float32 they differ by rounding, amplified through
    18 layers and batch norm: about 5e-5 relative)."""
    torch.manual_seed(0)
    contiguous = build_fingerprint_net(n_views=3, n_features=20, usage_predictor=True, widths=[4, 4, 8, 8], dropout=0.0)
    last = build_fingerprint_net(n_views=3, n_features=20, usage_predictor=True, widths=[4, 4, 8, 8], dropout=0.0)
    last.load_state_dict(contiguous.state_dict())
    contiguous.double()
    place(last.double(), torch.device("cpu"))
    images = torch.randn(4, 3, 8, 16, 16, dtype=torch.float64)
    r = torch.randn(4, 20, dtype=torch.float64)
    out = []
    for net, x in ((contiguous, images), (last, as_layout(images, torch.device("cpu")))):
        logit, u = net(x, r)
        (logit.sum() + u.sum()).backward()
        grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
        out.append((logit.detach(), u.detach(), grads))
    (logit_a, u_a, grad_a), (logit_b, u_b, grad_b) = out
    assert next(last.usage_predictor.parameters()).is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(u_b, u_a, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(logit_b, logit_a, rtol=1e-9, atol=1e-12)
    assert grad_a.keys() == grad_b.keys() and len(grad_a) > 10
    for name in grad_a:
        torch.testing.assert_close(grad_b[name], grad_a[name], rtol=1e-8, atol=1e-10, msg=name)


def test_as_layout_keeps_values() -> None:
    x = torch.arange(2 * 3 * 2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 2, 3, 4)
    torch.testing.assert_close(as_layout(x, torch.device("cpu")), x)
