"""Networks: parameter counts equal to the reference implementations, output shapes and ranges,
gradients, stride padding, config round trips, weight init, local enhancer set-up, face stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid2vid_app.errors import UserError
from vid2vid_app.imaging import crop_to, pad_to_multiple
from vid2vid_app.models import (
    DISCRIMINATORS,
    GENERATORS,
    build_discriminator,
    build_generator,
    init_weights,
    load_global_into_local,
)
from vid2vid_app.models.discriminators import TemporalDiscriminator
from vid2vid_app.models.face import crop_faces, face_box, face_side, head_width, paste_faces


def meta_count(build, *args, **kw) -> int:
    # Building on the meta device allocates nothing, so even the 180M-parameter models count instantly.
    with torch.device("meta"):
        return sum(p.numel() for p in build(*args, init=None, **kw).parameters())


# Published parameter counts of the reference implementations at their default settings.
@pytest.mark.parametrize(
    "arch, kw, expected",
    [
        ("unet_256", {}, 54_413_955),
        ("unet_128", {}, 41_828_995),
        ("resnet_9blocks", {}, 11_378_179),
        ("resnet_6blocks", {}, 7_837_699),
        ("global", {}, 182_443_267),
        ("local", {}, 182_701_827),
    ],
)
def test_generator_parameter_counts_match_reference(arch, kw, expected):
    assert meta_count(build_generator, arch, **kw) == expected


@pytest.mark.parametrize(
    "arch, kw, expected",
    [
        ("patch", {"in_channels": 6, "norm": "batch"}, 2_768_705),
        ("patch", {"in_channels": 3, "norm": "instance"}, 2_764_737),
        ("multiscale", {"in_channels": 6}, 5_535_618),
    ],
)
def test_discriminator_parameter_counts_match_reference(arch, kw, expected):
    assert meta_count(build_discriminator, arch, **kw) == expected


def test_registries_hold_the_documented_names():
    assert set(GENERATORS) == {"unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks", "global", "local", "face"}
    assert set(DISCRIMINATORS) == {"patch", "pixel", "multiscale", "temporal", "face", "todaygan"}


# Tiny configurations of every generator: (arch, keywords, input size).
TINY_G = [
    ("unet_128", {"ngf": 4, "n_downs": 5}, 32),
    ("unet_256", {"ngf": 2}, 256),  # the full 8-level depth, narrow
    ("resnet_6blocks", {"ngf": 4, "n_blocks": 2}, 32),
    ("resnet_9blocks", {"ngf": 4}, 32),
    ("global", {"ngf": 4, "n_downsample": 3, "n_blocks": 2}, 32),
    ("local", {"ngf": 4, "n_downsample": 2, "n_blocks": 2, "n_blocks_local": 1}, 32),
    ("local", {"ngf": 2, "n_downsample": 2, "n_blocks": 1, "n_local_enhancers": 2, "n_blocks_local": 1}, 32),
    ("face", {"in_channels": 6, "ngf": 4, "n_downsample": 2, "n_blocks": 1}, 32),
]


@pytest.mark.parametrize("arch, kw, size", TINY_G, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(TINY_G)])
def test_generator_forward_backward(arch, kw, size):
    torch.manual_seed(0)
    g = build_generator(arch, **kw)
    cin = kw.get("in_channels", 3)
    x = torch.rand(2, cin, size, size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0 and torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None for gr in grads)
    # The face generator starts with a zero last conv, so only that conv gets a gradient at first.
    nonzero = sum(bool(gr.abs().sum() > 0) for gr in grads)
    assert nonzero == (2 if arch == "face" else len(grads))


@pytest.mark.parametrize("arch, kw, size", TINY_G[2:], ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(TINY_G[2:])])
def test_stride_padding_handles_odd_sizes(arch, kw, size):
    g = build_generator(arch, **kw).eval()
    cin = kw.get("in_channels", 3)
    x = torch.rand(1, cin, 37, 29) * 2 - 1
    padded, hw = pad_to_multiple(x, g.stride)
    assert padded.shape[-2] % g.stride == 0 and padded.shape[-1] % g.stride == 0
    with torch.no_grad():
        y = crop_to(g(padded), hw)
    assert y.shape == (1, 3, 37, 29)


def test_strides_follow_the_downsampling_depth():
    with torch.device("meta"):
        assert build_generator("unet_256").stride == 256
        assert build_generator("unet_128").stride == 128
        assert build_generator("unet_256", n_downs=6).stride == 64
        assert build_generator("resnet_9blocks").stride == 4
        assert build_generator("global").stride == 16
        assert build_generator("local").stride == 32
        assert build_generator("local", n_local_enhancers=2, n_downsample=3).stride == 32


@pytest.mark.parametrize("arch", list(GENERATORS))
def test_config_rebuilds_the_same_network(arch):
    kw = {"in_channels": 5} if arch == "face" else {"in_channels": 4, "out_channels": 2}
    with torch.device("meta"):
        g = build_generator(arch, ngf=8, norm="batch", **kw)
        assert g.config["arch"] == arch and g.config["norm"] == "batch"
        again = build_generator(**g.config)
    shapes = {k: v.shape for k, v in g.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}


def test_arch_defaults_and_irrelevant_keywords():
    with torch.device("meta"):
        unet = build_generator("unet_256", n_blocks=3, n_downsample=2)  # ignored: a U-Net takes neither
        resnet6 = build_generator("resnet_6blocks")
        local = build_generator("local")
    assert unet.config == {"arch": "unet_256", "in_channels": 3, "out_channels": 3, "n_downs": 8, "ngf": 64,
                           "norm": "batch", "dropout": True}
    assert resnet6.config["n_blocks"] == 6 and resnet6.config["norm"] == "instance"
    assert local.config["ngf"] == 32
    assert local.model[1].weight.shape[0] == 64  # the global branch is ngf * 2^n_local_enhancers wide


@pytest.mark.parametrize(("build", "message"), [
    (lambda: build_generator("unet_512"), "Unknown generator architecture 'unet_512'.*unet_256"),
    (lambda: build_discriminator("huge", in_channels=3), "Unknown discriminator architecture"),
    (lambda: build_generator("global", norm="group"), "Unknown norm 'group'"),
    (lambda: build_generator("face", in_channels=3), "in_channels must exceed 3"),
], ids=["generator-arch", "discriminator-arch", "norm", "face-channels"])
def test_unknown_arch_and_norm_are_user_errors(build, message):
    with pytest.raises(UserError, match=message):
        build()


def test_patch_discriminator_sees_70px_patches_on_30x30_grid():
    d = build_discriminator("patch", in_channels=6, ndf=4)
    out = d(torch.randn(1, 6, 256, 256))
    assert out.shape == (1, 1, 30, 30)  # the pix2pix PatchGAN logits grid for a 256x256 input


def test_pixel_discriminator_keeps_resolution():
    d = build_discriminator("pixel", in_channels=6, ndf=4)
    assert d(torch.randn(2, 6, 20, 24)).shape == (2, 1, 20, 24)


def _pix2pixhd_sizes(n: int, n_layers: int) -> list[int]:
    """Spatial sizes after each stage of a pix2pixHD D (4x4 convs, padding 2)."""
    sizes = []
    for k in range(n_layers + 2):
        stride = 2 if k < n_layers else 1
        n = (n + 4 - 4) // stride + 1
        sizes.append(n)
    return sizes


@pytest.mark.parametrize("arch", ["multiscale", "temporal", "face"])
def test_multiscale_discriminators_return_features_per_scale(arch):
    cin = 12 if arch == "temporal" else 6
    d = build_discriminator(arch, in_channels=cin, ndf=4, num_d=3)
    x = torch.randn(2, cin, 64, 64, requires_grad=True)
    out = d(x)
    assert len(out) == 3 and all(len(scale) == 3 + 2 for scale in out)
    for k, scale in enumerate(out):
        size = (64 - 1) // 2**k + 1  # 3x3 stride-2 average pooling with padding 1, k times
        assert [f.shape[-1] for f in scale] == _pix2pixhd_sizes(size, 3)
        assert scale[-1].shape[1] == 1
    assert [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]
    sum(s[-1].mean() for s in out).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_temporal_pair_orders_pose_then_frames():
    p0, p1, f0, f1 = (torch.full((1, 3, 2, 2), float(v)) for v in range(4))
    pair = TemporalDiscriminator.pair(p0, p1, f0, f1)
    assert pair[0, :, 0, 0].tolist() == [0.0] * 3 + [1.0] * 3 + [2.0] * 3 + [3.0] * 3


def test_init_weights_statistics():
    torch.manual_seed(0)
    d = build_discriminator("patch", in_channels=3, ndf=64, norm="batch", init=None)
    init_weights(d, "normal", 0.02)
    conv = d.model[8]  # 256 -> 512 channels, 4x4: 2M weights
    assert abs(conv.weight.mean().item()) < 1e-3 and abs(conv.weight.std().item() - 0.02) < 1e-3
    assert torch.all(d.model[0].bias == 0)
    bn = d.model[9]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and 0.01 < bn.weight.std().item() < 0.03
    assert torch.all(bn.bias == 0)
    with pytest.raises(ValueError, match="unknown init"):
        init_weights(d, "uniformish")


# ------------------------------------------------------------------------------- local enhancer


def _tiny_pair(ngf_global=8):
    glob = build_generator("global", ngf=ngf_global, n_downsample=2, n_blocks=1)
    local = build_generator("local", ngf=4, n_downsample=2, n_blocks=1, n_blocks_local=1)
    return glob, local


def test_load_global_into_local_copies_the_trunk():
    torch.manual_seed(0)
    glob, local = _tiny_pair()
    load_global_into_local(local, glob)
    trunk = torch.nn.Sequential(*list(glob.model)[:-3])
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(local.model(x), trunk(x))
    # The copy is of values: training the local model does not touch the global one.
    assert local.model[1].weight.data_ptr() != glob.model[1].weight.data_ptr()


def test_load_global_into_local_from_state_dict_with_prefix():
    glob, local = _tiny_pair()
    sd = {f"module.{k}": v for k, v in glob.state_dict().items()}
    load_global_into_local(local, sd)
    assert torch.equal(local.model[1].weight, glob.model[1].weight)


def test_load_global_into_local_rejects_wrong_width():
    glob, local = _tiny_pair(ngf_global=4)  # the local's branch needs ngf 8
    with pytest.raises(UserError, match="does not match the local enhancer's global branch: shape mismatches"):
        load_global_into_local(local, glob)
    with pytest.raises(UserError, match="needs a local enhancer"):
        load_global_into_local(glob, glob)


# ------------------------------------------------------------------------------- face stage


def test_face_generator_starts_as_identity_and_stays_in_range():
    g = build_generator("face", in_channels=6, ngf=4, n_downsample=2, n_blocks=1)
    init_weights(g)  # re-initialising keeps the zero residual head
    x = torch.rand(2, 6, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(g(x), x[:, 3:])
        g.model[-2].bias.fill_(5.0)  # a large residual saturates instead of leaving [-1, 1]
        y = g(x)
    assert y.min() >= -1 and y.max() <= 1 and (y == 1).any()


def _keypoints(nose=(100.0, 80.0), ear_dist=30.0, shoulder_dist=60.0, conf=0.9) -> np.ndarray:
    kp = np.zeros((33, 3))
    kp[:, 2] = conf
    kp[0, :2] = nose
    kp[7, :2] = (nose[0] + ear_dist / 2, nose[1])
    kp[8, :2] = (nose[0] - ear_dist / 2, nose[1])
    kp[11, :2] = (nose[0] + shoulder_dist / 2, nose[1] + 40)
    kp[12, :2] = (nose[0] - shoulder_dist / 2, nose[1] + 40)
    return kp


def test_face_box_is_a_square_around_the_nose():
    # head width = max(ears 30, 0.4 * shoulders 24) = 30; side = 2 * 30 = 60
    assert head_width(_keypoints()) == pytest.approx(30.0)
    assert face_box(_keypoints(), (320, 240)) == (70, 50, 130, 110)
    # Side view: ears overlap, the shoulders give the size (0.4 * 100 = 40 -> side 80).
    assert face_box(_keypoints(ear_dist=2.0, shoulder_dist=100.0), (320, 240)) == (60, 40, 140, 120)


def test_face_box_is_shifted_inside_and_clipped_to_the_image():
    assert face_box(_keypoints(nose=(5.0, 230.0)), (320, 240)) == (0, 180, 60, 240)
    # A side larger than the image shrinks to the image's short side, then shifts inside.
    assert face_box(_keypoints(), (50, 40), side=100) == (10, 0, 50, 40)


def test_face_box_without_a_face_is_none():
    assert face_box(_keypoints(conf=0.0), (320, 240)) is None
    kp = _keypoints()
    kp[:] = np.nan
    assert face_box(kp, (320, 240)) is None


def test_face_side_is_the_median_over_frames():
    seq = np.stack([_keypoints(ear_dist=d) for d in (20.0, 30.0, 40.0)] + [_keypoints(conf=0.0)])
    assert face_side(seq, box_frac=2.0) == 60
    assert face_side(seq[3:]) is None


def test_crop_and_paste_round_trip_and_gradients():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 40, 48, requires_grad=True)
    boxes = torch.tensor([[4, 6, 20, 22], [30, 20, 46, 36]])  # 16 px squares
    crops = crop_faces(images, boxes, 16)
    assert crops.shape == (2, 3, 16, 16)
    assert torch.equal(crops[1], images[1, :, 20:36, 30:46])
    pasted = paste_faces(images, crops, boxes)
    assert torch.equal(pasted, images)  # same-size crop then paste is exact
    faces = torch.zeros(2, 3, 32, 32, requires_grad=True)  # resized down into the boxes
    out = paste_faces(images, faces, boxes)
    assert torch.all(out[0, :, 6:22, 4:20] == 0) and torch.equal(out[0, :, 30:, :], images[0, :, 30:, :])
    assert images.detach().min() > 0  # the input itself is untouched
    out.sum().backward()
    assert faces.grad.abs().sum() > 0
    assert images.grad[0, :, 6:22, 4:20].abs().sum() == 0 and images.grad[0, :, 30:].abs().min() == 1


def test_crop_rejects_boxes_outside_the_image():
    with pytest.raises(ValueError, match="outside"):
        crop_faces(torch.zeros(1, 3, 10, 10), [[5, 5, 15, 15]], 8)
