"""PyTorch twin of the golden float network (golden.network.forward_float), for training.

The module takes normalized features (N, T, n_mfcc), frame-major like the golden model, and returns
logits (N, n_classes); activations stay frame-major (N, T, C) throughout (faster on CPU). Every layer of `golden.topology.plan` becomes a `SepLayer`:

    [depthwise Conv1d over time, groups=C, 'same' padding dil*(K-1)/2, no bias]
    -> 1x1 (fixed LFSR ternary matrix, a registered buffer, for mixer="ternary"; a learned
       Conv1d without bias for mixer="learned") -> BatchNorm1d(eps=1e-3)
    [+ BatchNorm1d(1x1(block input)) on the last sub-block of a block]
    -> ReLU

then mean pooling over time and a Linear classifier. `to_golden_arrays` exports the weights in the
names and shapes of `golden.network.float_param_shapes`; `load_golden_arrays` does the reverse.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ternkws.golden.network import BN_EPS, _ternary, float_param_shapes
from ternkws.golden.topology import Topology, plan


class TernaryMixer(nn.Module):
    """A 1x1 conv whose weight is the constant LFSR ternary matrix: a buffer, never trained."""

    def __init__(self, seed, c_out, c_in, density, pattern="iid"):
        super().__init__()
        w = _ternary(seed, c_out, c_in, density, pattern).astype(np.float32)
        self.register_buffer("weight", torch.from_numpy(w.copy()))

    def forward(self, x):                      # x (N, T, C_in)
        return x @ self.weight.t()


class LearnedMixer(nn.Module):
    def __init__(self, c_out, c_in):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in))
        nn.init.kaiming_uniform_(self.weight.unsqueeze(-1), a=5 ** 0.5)  # Conv1d's default

    def forward(self, x):
        return x @ self.weight.t()


def _mixer(top, seed, c_out, c_in):
    if top.mixer == "ternary":
        return TernaryMixer(seed, c_out, c_in, top.density, top.pattern)
    return LearnedMixer(c_out, c_in)


class SepLayer(nn.Module):
    def __init__(self, top, layer):
        super().__init__()
        self.name = layer.name
        self.block_start = layer.block_start
        self.residual = layer.residual
        if layer.kernel:
            self.dw = nn.Conv1d(layer.c_in, layer.c_in, layer.kernel, groups=layer.c_in,
                                dilation=layer.dilation, padding=layer.dilation * (layer.kernel - 1) // 2,
                                bias=False)
        else:
            self.dw = None
        self.pw = _mixer(top, layer.seed, layer.c_out, layer.c_in)
        self.bn = nn.BatchNorm1d(layer.c_out, eps=BN_EPS)
        if layer.residual:
            self.res_pw = _mixer(top, layer.res_seed, layer.c_out, layer.res_c_in)
            self.res_bn = nn.BatchNorm1d(layer.c_out, eps=BN_EPS)

    def depthwise(self, x):
        """(N, T, C) -> (N, T, C). Undilated: the frame-major tensor is viewed as a channels-last
        (N, C, 1, T) image, where oneDNN's depthwise conv (forward + backward) is 2-3x faster than Conv1d
        on (N, C, T); dilated (the epilogue): Conv1d on (N, C, T), 2.1x faster than the channels-last
        path, whose backward takes a slow route for a dilation (measured on one thread, batch 128:
        219 against 458 ms for the default epilogue; depthwise backward was 48% of a training step)."""
        conv = self.dw
        if conv.dilation[0] > 1:
            return F.conv1d(x.transpose(1, 2), conv.weight, None, 1, conv.padding[0], conv.dilation[0],
                            conv.groups).transpose(1, 2)
        x4 = x.unsqueeze(1).permute(0, 3, 1, 2)
        y = F.conv2d(x4, conv.weight.unsqueeze(2), None, 1, (0, conv.padding[0]), (1, conv.dilation[0]),
                     conv.groups)
        return y.permute(0, 2, 3, 1).squeeze(1)

    @staticmethod
    def _bn(bn, z):
        """BatchNorm over (N, T) of a frame-major (N, T, C) tensor (the stats BatchNorm1d takes on (N, C, T))."""
        n, t, c = z.shape
        return bn(z.reshape(n * t, c)).view(n, t, c)

    def forward(self, x, block_in):
        h = self.depthwise(x) if self.dw is not None else x
        z = self._bn(self.bn, self.pw(h))
        if self.residual:
            z = z + self._bn(self.res_bn, self.res_pw(block_in))
        return F.relu(z)


class KWSNet(nn.Module):
    """The MatchboxNet-style network of a Topology (same plan, same arithmetic as forward_float)."""

    def __init__(self, top: Topology):
        super().__init__()
        self.top = top
        self.layers = nn.ModuleList(SepLayer(top, layer) for layer in plan(top))
        self.classifier = nn.Linear(top.final_channels, top.n_classes)

    def features(self, x):
        """(N, T, n_mfcc) -> last activations (N, T, C)."""
        x = x.contiguous()
        block_in = x
        for layer in self.layers:
            if layer.block_start:
                block_in = x
            x = layer(x, block_in)
        return x

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=1))


def count_trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _bn_arrays(bn, prefix):
    return {f"{prefix}.gamma": bn.weight, f"{prefix}.beta": bn.bias,
            f"{prefix}.mean": bn.running_mean, f"{prefix}.var": bn.running_var}


def _tensor_map(module: KWSNet):
    """golden array name -> (tensor, golden shape)."""
    out = {}
    for layer in module.layers:
        n = layer.name
        if layer.dw is not None:
            out[n + ".dw"] = layer.dw.weight
        if isinstance(layer.pw, LearnedMixer):
            out[n + ".pw"] = layer.pw.weight
        out.update(_bn_arrays(layer.bn, n + ".bn"))
        if layer.residual:
            if isinstance(layer.res_pw, LearnedMixer):
                out[n + ".res.pw"] = layer.res_pw.weight
            out.update(_bn_arrays(layer.res_bn, n + ".res.bn"))
    out["classifier.weight"] = module.classifier.weight
    out["classifier.bias"] = module.classifier.bias
    return out


def to_golden_arrays(module: KWSNet):
    """float32 arrays named and shaped as golden.network.float_param_shapes(module.top)."""
    shapes = float_param_shapes(module.top)
    tensors = _tensor_map(module)
    assert set(tensors) == set(shapes), set(tensors) ^ set(shapes)
    return {k: tensors[k].detach().cpu().to(torch.float32).numpy().reshape(shapes[k]).copy() for k in shapes}


@torch.no_grad()
def load_golden_arrays(module: KWSNet, arrays):
    """Copy golden-named arrays into the module (shapes checked)."""
    shapes = float_param_shapes(module.top)
    for k, t in _tensor_map(module).items():
        a = np.asarray(arrays[k])
        if a.shape != tuple(shapes[k]):
            raise ValueError(f"{k}: shape {a.shape}, expected {shapes[k]}")
        t.copy_(torch.from_numpy(a.astype(np.float64)).reshape(t.shape).to(t.dtype))
    return module
