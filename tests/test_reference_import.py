"""Importing generators trained with pytorch-CycleGAN-and-pix2pix and pix2pixHD / Everybody Dance Now.

The reference key layouts are written out below, independently of our modules, from the
reference networks' structure:

pytorch-CycleGAN-and-pix2pix U-Net (UnetGenerator of nested UnetSkipConnectionBlocks):
    model.model.0          outermost down-conv (ngf, in, 4, 4); bias only with instance norm
    model.model.1          level 1 block; its children: model.1 down-conv, model.2 norm, model.3 next level,
                           model.5 up-conv (ConvTranspose: (2*inner, outer, 4, 4)), model.6 norm
    innermost level:       model.1 down-conv, model.3 up-conv (inner, outer, 4, 4), model.4 norm
    model.model.3          outermost up-conv (2*ngf, out, 4, 4), always biased
ResNet (CycleGAN) / pix2pixHD global, ``model.N``: 1 conv7x7, 2 norm, then per downsampling
    conv3x3 s2 + norm (+ReLU) at 4+3j / 5+3j, residual blocks (conv_block.1 / .2 / .5 / .6), per
    upsampling ConvTranspose + norm, final conv7x7 at the second-to-last index (always biased).
pix2pixHD local enhancer: the global trunk without its final pad/conv/tanh as ``model.N``;
    ``model1_1``: .1 conv7x7 (c, in), .2 norm, .4 conv3x3 s2 (2c, c), .5 norm; ``model1_2``: blocks
    0..B-1, B ConvTranspose (2c, c), B+1 norm, B+4 final conv7x7 (out, ngf).
BatchNorm keys: weight, bias, running_mean, running_var (C,), num_batches_tracked ().
The reference InstanceNorm (affine=False, no running stats) has no keys.

Each test builds a state dict from these layouts with random values, loads it, checks the inferred
architecture, and compares the output with an independent functional forward pass (F.conv2d & co.)
of the reference math.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vid2vid_app.errors import UserError
from vid2vid_app.models import build_generator, infer_generator_config, load_reference_generator

# ------------------------------------------------------------------------ layouts (key -> shape)


def _conv(layout, key, cout, cin, k, bias, transposed=False):
    layout[f"{key}.weight"] = (cin, cout, k, k) if transposed else (cout, cin, k, k)
    if bias:
        layout[f"{key}.bias"] = (cout,)


def _norm(layout, key, c, norm):
    if norm == "batch":
        for name in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{key}.{name}"] = (c,)
        layout[f"{key}.num_batches_tracked"] = ()


def unet_layout(n_downs, ngf, cin, cout, norm):
    """pytorch-CycleGAN-and-pix2pix U-Net; conv biases only with instance norm (their rule)."""
    bias = norm == "instance"
    width = [ngf * min(2**i, 8) for i in range(n_downs)]
    L = {}
    _conv(L, "model.model.0", width[0], cin, 4, bias)
    _conv(L, "model.model.3", cout, width[0] * 2, 4, True, transposed=True)
    p = "model.model.1.model."
    for level in range(1, n_downs):
        outer, inner = width[level - 1], width[level]
        _conv(L, p + "1", inner, outer, 4, bias)
        if level == n_downs - 1:  # innermost
            _conv(L, p + "3", outer, inner, 4, bias, transposed=True)
            _norm(L, p + "4", outer, norm)
        else:
            _norm(L, p + "2", inner, norm)
            _conv(L, p + "5", outer, inner * 2, 4, bias, transposed=True)
            _norm(L, p + "6", outer, norm)
            p += "3.model."
    return L


def resnet_trunk_layout(L, prefix, cin, ngf, n_down, n_blocks, norm, bias, dropout=False, final_out=None):
    """ResNet / pix2pixHD global layout under ``prefix`` (``final_out`` None: no final conv)."""
    _conv(L, f"{prefix}1", ngf, cin, 7, bias)
    _norm(L, f"{prefix}2", ngf, norm)
    i = 4
    for j in range(n_down):
        c = ngf * 2**j
        _conv(L, f"{prefix}{i}", c * 2, c, 3, bias)
        _norm(L, f"{prefix}{i + 1}", c * 2, norm)
        i += 3
    c = ngf * 2**n_down
    second = 6 if dropout else 5
    for _ in range(n_blocks):
        _conv(L, f"{prefix}{i}.conv_block.1", c, c, 3, bias)
        _norm(L, f"{prefix}{i}.conv_block.2", c, norm)
        _conv(L, f"{prefix}{i}.conv_block.{second}", c, c, 3, bias)
        _norm(L, f"{prefix}{i}.conv_block.{second + 1}", c, norm)
        i += 1
    for j in range(n_down):
        c = ngf * 2 ** (n_down - j)
        _conv(L, f"{prefix}{i}", c // 2, c, 3, bias, transposed=True)
        _norm(L, f"{prefix}{i + 1}", c // 2, norm)
        i += 3
    if final_out is not None:
        _conv(L, f"{prefix}{i + 1}", final_out, ngf, 7, True)
    return L


def local_layout(cin, cout, ngf, n_down, n_blocks, n_local, n_blocks_local, norm):
    L = resnet_trunk_layout({}, "model.", cin, ngf * 2**n_local, n_down, n_blocks, norm, bias=True)
    for n in range(1, n_local + 1):
        c = ngf * 2 ** (n_local - n)
        _conv(L, f"model{n}_1.1", c, cin, 7, True)
        _norm(L, f"model{n}_1.2", c, norm)
        _conv(L, f"model{n}_1.4", 2 * c, c, 3, True)
        _norm(L, f"model{n}_1.5", 2 * c, norm)
        for b in range(n_blocks_local):
            for conv, nrm in ((1, 2), (5, 6)):
                _conv(L, f"model{n}_2.{b}.conv_block.{conv}", 2 * c, 2 * c, 3, True)
                _norm(L, f"model{n}_2.{b}.conv_block.{nrm}", 2 * c, norm)
        _conv(L, f"model{n}_2.{n_blocks_local}", c, 2 * c, 3, True, transposed=True)
        _norm(L, f"model{n}_2.{n_blocks_local + 1}", c, norm)
        if n == n_local:
            _conv(L, f"model{n}_2.{n_blocks_local + 4}", cout, ngf, 7, True)
    return L


def random_state_dict(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
            sd[key] = 0.5 + torch.rand(shape, generator=g)  # positive variances / scales
        else:
            sd[key] = 0.1 * torch.randn(shape, generator=g)
    return sd


# ------------------------------------------------------------ independent functional forward


def f_norm(sd, key, x, norm):
    if norm == "batch":
        return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                            sd[f"{key}.bias"], training=False, eps=1e-5)
    return F.instance_norm(x, eps=1e-5) if norm == "instance" else x


def f_conv(sd, key, x, stride=1, padding=0):
    return F.conv2d(x, sd[f"{key}.weight"], sd.get(f"{key}.bias"), stride=stride, padding=padding)


def f_convt(sd, key, x, k):
    pad, out_pad = (1, 0) if k == 4 else (1, 1)
    return F.conv_transpose2d(x, sd[f"{key}.weight"], sd.get(f"{key}.bias"), stride=2, padding=pad,
                              output_padding=out_pad)


def ref_unet(sd, x, n_downs, norm):
    def level(i, p, x):
        # Every non-outermost block starts with an in-place LeakyReLU on its input, so in the
        # reference the skip connection carries lrelu(x).
        x = F.leaky_relu(x, 0.2)
        h = f_conv(sd, p + "1", x, 2, 1)
        if i == n_downs - 1:
            h = f_norm(sd, p + "4", f_convt(sd, p + "3", F.relu(h), 4), norm)
        else:
            h = level(i + 1, p + "3.model.", f_norm(sd, p + "2", h, norm))
            h = f_norm(sd, p + "6", f_convt(sd, p + "5", F.relu(h), 4), norm)
        return torch.cat([x, h], 1)

    h = f_conv(sd, "model.model.0", x, 2, 1)
    h = level(1, "model.model.1.model.", h)
    return torch.tanh(f_convt(sd, "model.model.3", F.relu(h), 4))


def ref_resnet_trunk(sd, prefix, x, n_down, n_blocks, norm):
    h = F.relu(f_norm(sd, f"{prefix}2", f_conv(sd, f"{prefix}1", F.pad(x, (3,) * 4, mode="reflect")), norm))
    i = 4
    for _ in range(n_down):
        h = F.relu(f_norm(sd, f"{prefix}{i + 1}", f_conv(sd, f"{prefix}{i}", h, 2, 1), norm))
        i += 3
    for _ in range(n_blocks):
        b = f"{prefix}{i}.conv_block."
        r = F.relu(f_norm(sd, b + "2", f_conv(sd, b + "1", F.pad(h, (1,) * 4, mode="reflect")), norm))
        r = f_norm(sd, b + "6", f_conv(sd, b + "5", F.pad(r, (1,) * 4, mode="reflect")), norm)
        h = h + r
        i += 1
    for _ in range(n_down):
        h = F.relu(f_norm(sd, f"{prefix}{i + 1}", f_convt(sd, f"{prefix}{i}", h, 3), norm))
        i += 3
    return h, i


def ref_resnet(sd, x, n_down, n_blocks, norm):
    h, i = ref_resnet_trunk(sd, "model.", x, n_down, n_blocks, norm)
    return torch.tanh(f_conv(sd, f"model.{i + 1}", F.pad(h, (3,) * 4, mode="reflect")))


def ref_local(sd, x, n_down, n_blocks, n_blocks_local, norm):  # one enhancer
    small = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    h, _ = ref_resnet_trunk(sd, "model.", small, n_down, n_blocks, norm)
    f = F.relu(f_norm(sd, "model1_1.2", f_conv(sd, "model1_1.1", F.pad(x, (3,) * 4, mode="reflect")), norm))
    f = F.relu(f_norm(sd, "model1_1.5", f_conv(sd, "model1_1.4", f, 2, 1), norm))
    h = f + h
    for b in range(n_blocks_local):
        p = f"model1_2.{b}.conv_block."
        r = F.relu(f_norm(sd, p + "2", f_conv(sd, p + "1", F.pad(h, (1,) * 4, mode="reflect")), norm))
        h = h + f_norm(sd, p + "6", f_conv(sd, p + "5", F.pad(r, (1,) * 4, mode="reflect")), norm)
    nb = n_blocks_local
    h = F.relu(f_norm(sd, f"model1_2.{nb + 1}", f_convt(sd, f"model1_2.{nb}", h, 3), norm))
    return torch.tanh(f_conv(sd, f"model1_2.{nb + 4}", F.pad(h, (3,) * 4, mode="reflect")))


def assert_same_output(model, ref_fn, x):
    with torch.no_grad():
        ours, ref = model(x.clone()), ref_fn(x.clone())
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert ours.abs().mean() > 1e-3  # not a degenerate all-zero comparison


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("arch, n_downs", [("unet_128", 7), ("unet_256", 8)])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_our_unet_has_the_reference_layout(arch, n_downs, norm):
    with torch.device("meta"):
        g = build_generator(arch, ngf=64, norm=norm)
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == unet_layout(n_downs, 64, 3, 3, norm)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_our_resnet_and_pix2pixhd_layouts(norm):
    with torch.device("meta"):
        resnet = build_generator("resnet_9blocks", norm=norm)
        glob = build_generator("global", norm=norm)
        local = build_generator("local", norm=norm)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(resnet) == resnet_trunk_layout({}, "model.", 3, 64, 2, 9, norm, norm == "instance", final_out=3)
    assert shapes(glob) == resnet_trunk_layout({}, "model.", 3, 64, 4, 9, norm, True, final_out=3)
    assert shapes(local) == local_layout(3, 3, 32, 4, 9, 1, 3, norm)


@pytest.mark.parametrize("arch, n_downs, norm", [("unet_256", 8, "batch"), ("unet_128", 7, "instance")])
def test_pix2pix_unet_checkpoint_loads_and_matches_reference_math(arch, n_downs, norm):
    sd = random_state_dict(unet_layout(n_downs, 2, 3, 3, norm))
    assert infer_generator_config(sd) == {"arch": arch, "in_channels": 3, "out_channels": 3, "ngf": 2,
                                          "norm": norm, "n_downs": n_downs}
    g = load_reference_generator(sd)
    assert not g.training and g.stride == 2**n_downs
    x = torch.rand(1, 3, g.stride, g.stride) * 2 - 1
    assert_same_output(g, lambda x: ref_unet(sd, x, n_downs, norm), x)


def test_unet_depth_channels_are_inferred():
    sd = random_state_dict(unet_layout(5, 4, 1, 2, "instance"))
    g = load_reference_generator(sd)
    assert g.config == {"arch": "unet_256", "in_channels": 1, "out_channels": 2, "n_downs": 5, "ngf": 4,
                        "norm": "instance", "dropout": True}
    assert_same_output(g, lambda x: ref_unet(sd, x, 5, "instance"), torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize("n_blocks, norm", [(9, "instance"), (6, "batch")])
def test_cyclegan_resnet_checkpoint_loads_and_matches_reference_math(n_blocks, norm):
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, n_blocks, norm, norm == "instance",
                                               final_out=3))
    g = load_reference_generator(sd)
    assert g.config == {"arch": f"resnet_{n_blocks}blocks", "in_channels": 3, "out_channels": 3, "ngf": 4,
                        "n_blocks": n_blocks, "norm": norm, "dropout": False}
    assert_same_output(g, lambda x: ref_resnet(sd, x, 2, n_blocks, norm), torch.rand(2, 3, 24, 20) * 2 - 1)


def test_resnet_dropout_is_inferred_from_block_layout():
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, 2, "instance", True, dropout=True,
                                               final_out=3))
    g = load_reference_generator(sd)
    assert g.config["dropout"] is True and g.config["n_blocks"] == 2


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_pix2pixhd_global_checkpoint_loads_and_matches_reference_math(norm):
    # pix2pixHD keeps conv biases even before BatchNorm; that is how its global G with 2
    # downsamplings is told apart from a CycleGAN ResNet with batch norm.
    n_down = 3 if norm == "instance" else 2
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 6, 4, n_down, 2, norm, True, final_out=3))
    g = load_reference_generator(sd)
    assert g.config == {"arch": "global", "in_channels": 6, "out_channels": 3, "ngf": 4, "n_downsample": n_down,
                        "n_blocks": 2, "norm": norm}
    assert_same_output(g, lambda x: ref_resnet(sd, x, n_down, 2, norm), torch.rand(1, 6, 32, 16) * 2 - 1)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_pix2pixhd_local_checkpoint_loads_and_matches_reference_math(norm):
    sd = random_state_dict(local_layout(3, 3, 2, 2, 2, 1, 2, norm))
    g = load_reference_generator(sd)
    assert g.config == {"arch": "local", "in_channels": 3, "out_channels": 3, "ngf": 2, "n_downsample": 2,
                        "n_blocks": 2, "n_local_enhancers": 1, "n_blocks_local": 2, "norm": norm}
    assert g.stride == 8
    assert_same_output(g, lambda x: ref_local(sd, x, 2, 2, 2, norm), torch.rand(1, 3, 32, 24) * 2 - 1)


def test_two_enhancer_local_is_inferred():
    sd = random_state_dict(local_layout(3, 3, 2, 2, 1, 2, 1, "instance"))
    g = load_reference_generator(sd)
    assert g.config["n_local_enhancers"] == 2 and g.config["ngf"] == 2 and g.stride == 16


def test_file_with_dataparallel_prefix_loads(tmp_path):
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, 9, "instance", True, final_out=3))
    path = tmp_path / "latest_net_G_A.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    g = load_reference_generator(path)
    assert torch.equal(g.model[1].weight, sd["model.1.weight"])


def test_old_instance_norm_running_stats_are_dropped():
    # Models saved while the reference built InstanceNorm with track_running_stats=True.
    layout = resnet_trunk_layout({}, "model.", 3, 4, 2, 1, "instance", True, final_out=3)
    sd = random_state_dict(layout)
    stale = {"model.2.running_mean": torch.ones(4), "model.2.running_var": torch.ones(4),
             "model.2.num_batches_tracked": torch.tensor(3)}
    g = load_reference_generator({**sd, **stale})
    assert_same_output(g, lambda x: ref_resnet(sd, x, 2, 1, "instance"), torch.rand(1, 3, 16, 16))


def test_missing_batchnorm_counters_are_tolerated():
    sd = random_state_dict(unet_layout(5, 2, 3, 3, "batch"))
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    g = load_reference_generator(sd)
    assert_same_output(g, lambda x: ref_unet(sd, x, 5, "batch"), torch.rand(1, 3, 32, 32))


def test_reference_no_norm_checkpoint_without_biases_loads():
    # The reference builds convs without biases when norm is 'none'; ours have (zero) biases there.
    sd = random_state_dict(unet_layout(5, 2, 3, 3, "none"))
    assert "model.model.0.bias" not in sd
    g = load_reference_generator(sd)
    assert g.config["norm"] == "none"
    assert_same_output(g, lambda x: ref_unet(sd, x, 5, "none"), torch.rand(1, 3, 32, 32))


def test_foreign_keys_are_named_in_the_error():
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, 9, "instance", True, final_out=3))
    sd["extra.head.weight"] = torch.zeros(3)
    with pytest.raises(UserError, match=r"unexpected keys extra\.head\.weight"):
        load_reference_generator(sd)


def test_missing_keys_are_named_in_the_error():
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, 9, "instance", True, final_out=3))
    del sd["model.12.conv_block.5.bias"]
    with pytest.raises(UserError, match=r"missing keys model\.12\.conv_block\.5\.bias"):
        load_reference_generator(sd)


def test_overrides_apply_and_mismatches_are_reported():
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 6, 4, 3, 5, "instance", True, final_out=3))
    face = load_reference_generator(sd, arch="face")  # an Everybody Dance Now face generator file
    assert face.config["arch"] == "face" and face.config["ngf"] == 4
    assert torch.equal(face.model[-2].weight, sd[f"model.{4 + 3 * 3 + 5 + 3 * 3 + 1}.weight"])
    with pytest.raises(UserError, match=r"does not match a global generator: shape mismatches .*model\.1\.weight"):
        load_reference_generator(sd, ngf=8)
    with pytest.raises(UserError, match="does not match a unet_256 generator: unexpected keys"):
        load_reference_generator(sd, arch="unet_256")
    with pytest.raises(UserError, match="Unknown generator architecture 'resnet'"):
        load_reference_generator(sd, arch="resnet")


@pytest.mark.parametrize(("source", "message"), [
    (lambda tmp: {"encoder.0.weight": torch.zeros(2, 2)}, "Cannot tell the generator architecture"),
    (lambda tmp: tmp / "missing.pth", "does not exist"),
    (lambda tmp: _written(tmp / "latest_net_G.pth", lambda p: p.write_text("not a checkpoint")),
     "latest_net_G.pth is not a readable PyTorch checkpoint"),
    (lambda tmp: _written(tmp / "list.pth", lambda p: torch.save([torch.zeros(1)], p)),
     "is not a state dict of tensors"),
], ids=["unknown-layout", "missing", "text-file", "list-not-state-dict"])
def test_unrecognised_layout_and_bad_files(tmp_path, source, message):
    with pytest.raises(UserError, match=message):
        load_reference_generator(source(tmp_path))


def _written(path, write):
    write(path)
    return path


def test_loaded_model_owns_float32_copies(tmp_path):
    sd = random_state_dict(resnet_trunk_layout({}, "model.", 3, 4, 2, 1, "batch", False, final_out=3))
    g = load_reference_generator(sd)
    assert g.model[1].weight.data_ptr() != sd["model.1.weight"].data_ptr()  # caller's tensors not shared
    path = tmp_path / "half.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, path)
    h = load_reference_generator(path)
    tensors = list(h.parameters()) + list(h.buffers())
    assert all(not t.is_meta for t in tensors)
    assert {t.dtype for t in tensors} == {torch.float32, torch.int64}  # the int64 is num_batches_tracked
    torch.testing.assert_close(h.model[1].weight, sd["model.1.weight"].half().float())
