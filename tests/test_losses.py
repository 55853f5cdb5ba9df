"""Loss functions against hand-computed values, the VGG perceptual loss on the real ImageNet
weights, and the CycleGAN image pool's behaviour and exact resume."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from vid2vid_app.errors import UserError
from vid2vid_app.models import vgg as vgg_module
from vid2vid_app.models.losses import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImagePool,
    VGGLoss,
    cycle_loss,
    feature_matching_loss,
    find_vgg_weights,
    gan_loss,
    identity_loss,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values).view(1, 1, 1, -1)


# ----------------------------------------------------------------------------- GAN losses


def test_lsgan_hand_values():
    # (0.5 - 1)^2 = 0.25 and (0.5 - 0)^2 = 0.25; mean of (2-1)^2, (0-1)^2 = 1.
    assert gan_loss(t(0.5), True, "lsgan").item() == pytest.approx(0.25)
    assert gan_loss(t(0.5), False, "lsgan").item() == pytest.approx(0.25)
    assert gan_loss(t(2.0, 0.0), True, "lsgan").item() == pytest.approx(1.0)
    assert gan_loss(t(2.0, 0.0), False, "lsgan").item() == pytest.approx(2.0)


def test_vanilla_is_bce_with_logits():
    # BCE with logits: real -> log(1 + e^-x), fake -> log(1 + e^x).
    assert gan_loss(t(0.0), True, "vanilla").item() == pytest.approx(math.log(2))
    x = 1.5
    assert gan_loss(t(x), True, "vanilla").item() == pytest.approx(math.log1p(math.exp(-x)))
    assert gan_loss(t(x), False, "vanilla").item() == pytest.approx(math.log1p(math.exp(x)))


def test_hinge_hand_values():
    x = t(0.5, 2.0, -3.0)
    # D real: mean(relu(1 - x)) = (0.5 + 0 + 4) / 3; D fake: mean(relu(1 + x)) = (1.5 + 3 + 0) / 3.
    assert gan_loss(x, True, "hinge").item() == pytest.approx(4.5 / 3)
    assert gan_loss(x, False, "hinge").item() == pytest.approx(4.5 / 3)
    # G: -mean(x) = -(0.5 + 2 - 3) / 3.
    assert gan_loss(x, True, "hinge", for_discriminator=False).item() == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match="hinge generator"):
        gan_loss(x, False, "hinge", for_discriminator=False)


def test_multiscale_uses_last_output_of_each_scale():
    feature = torch.full((1, 4, 2, 2), 100.0)  # intermediate features must be ignored
    pred = [[feature, t(0.5)], [feature, feature, t(2.0)]]
    # lsgan real: 0.25 at scale 1, 1.0 at scale 2.
    assert gan_loss(pred, True, "lsgan").item() == pytest.approx(1.25)  # summed, as pix2pixHD
    assert gan_loss(pred, True, "lsgan", scale_reduction="mean").item() == pytest.approx(0.625)
    # One discriminator's feature list: only its last entry (the logits) counts.
    assert gan_loss([feature, t(0.5)], True, "lsgan").item() == pytest.approx(0.25)


def test_gan_loss_gradient_and_bad_mode():
    x = t(0.5).requires_grad_()
    gan_loss(x, True, "lsgan").backward()
    assert x.grad.item() == pytest.approx(2 * (0.5 - 1.0))  # d/dx (x - 1)^2
    with pytest.raises(ValueError, match="unknown GAN loss mode"):
        gan_loss(x, True, "wgan")


def test_gan_loss_float32_under_bf16_logits():
    assert gan_loss(t(0.5).bfloat16(), True, "lsgan").dtype == torch.float32


# ----------------------------------------------------------------------------- feature matching


def _feats(values: list[float], logits: float) -> list[torch.Tensor]:
    return [torch.full((1, 2, 3, 3), v) for v in values] + [torch.full((1, 1, 2, 2), logits)]


def test_feature_matching_pix2pixhd_weights():
    # 2 scales x 3 intermediate layers; L1 per layer = |fake - real|; logits differ but are excluded.
    fake = [_feats([1.0, 2.0, 3.0], 50.0), _feats([0.0, 0.0, 0.0], -50.0)]
    real = [_feats([1.5, 1.0, 3.0], 0.0), _feats([2.0, 0.0, 1.0], 0.0)]
    l1_sum = (0.5 + 1.0 + 0.0) + (2.0 + 0.0 + 1.0)
    expected = l1_sum * 4.0 / (3 + 1) / 2  # weights 4/(n_layers+1) / num_d
    assert feature_matching_loss(fake, real, n_layers=3, num_d=2).item() == pytest.approx(expected)
    # n_layers 2 -> layer weight 4/3.
    assert feature_matching_loss(fake, real, n_layers=2, num_d=2).item() == pytest.approx(l1_sum * 4 / 3 / 2)


def test_feature_matching_detaches_real_and_checks_scales():
    fake = [[torch.ones(1, 2, 3, 3, requires_grad=True), torch.zeros(1, 1, 2, 2)]]
    real = [[torch.zeros(1, 2, 3, 3, requires_grad=True), torch.zeros(1, 1, 2, 2)]]
    feature_matching_loss(fake, real, n_layers=3, num_d=1).backward()
    assert fake[0][0].grad is not None and fake[0][0].grad.abs().sum() > 0
    assert real[0][0].grad is None  # targets are constants
    with pytest.raises(ValueError, match="num_d=2"):
        feature_matching_loss(fake, real, n_layers=3, num_d=2)


def test_cycle_and_identity_are_l1():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.5)
    b[0] = -1.0  # half the elements differ by 1, half by 0.5
    assert cycle_loss(b, a).item() == pytest.approx(0.75)
    assert identity_loss(b, a).item() == pytest.approx(0.75)


# ----------------------------------------------------------------------------- VGG loss


@pytest.fixture(scope="module")
def vgg_loss(shared_weights) -> VGGLoss:
    return VGGLoss(shared_weights / "vgg16_features_imagenet.pth")


def test_vgg_loss_zero_for_identical_positive_and_differentiable(vgg_loss):
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 32, 48, generator=g) * 2 - 1
    assert vgg_loss(y, y.clone()).item() == 0.0
    x = (y + 0.3 * torch.randn(2, 3, 32, 48, generator=g)).clamp(-1, 1).requires_grad_()
    y.requires_grad_()
    loss = vgg_loss(x, y)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert y.grad is None  # target features are detached
    # More distortion -> larger loss.
    far = (y.detach() + 0.8 * torch.randn(2, 3, 32, 48, generator=g)).clamp(-1, 1)
    assert vgg_loss(far, y.detach()).item() > loss.item()


def test_vgg_loss_is_frozen_eval_and_layers_are_relu_x_1(vgg_loss):
    assert not any(p.requires_grad for p in vgg_loss.parameters())
    vgg_loss.train()
    assert not vgg_loss.features.training
    # Five stages at full, 1/2, 1/4, 1/8, 1/16 resolution: relu1_1 ... relu5_1 of VGG16.
    x = torch.zeros(1, 3, 32, 32)
    shapes = [tuple(f.shape[1:]) for f in vgg_loss.features(x)]
    assert shapes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    # Stage 3 equals torchvision's features[:12] (ending at relu3_1) with the same weights.
    with torch.device("meta"):  # skip the slow random init; every weight is loaded below
        ref = torchvision.models.vgg16(weights=None).features[:12]
    ref = ref.to_empty(device="cpu")
    ref.load_state_dict(torch.load(vgg_loss.weights_path, weights_only=True), strict=False)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(vgg_loss.features(x)[2], ref(x))


def test_vgg_loss_imagenet_normalisation(vgg_loss):
    # [-1, 1] maps to ((x + 1) / 2 - mean) / std per channel.
    lo = vgg_loss._normalise(torch.full((1, 3, 1, 1), -1.0)).flatten()
    hi = vgg_loss._normalise(torch.full((1, 3, 1, 1), 1.0)).flatten()
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(lo, -mean / std)
    torch.testing.assert_close(hi, (1 - mean) / std)


def test_vgg_loss_accepts_full_model_state_dict(shared_weights, tmp_path):
    features = torch.load(shared_weights / "vgg16_features_imagenet.pth", weights_only=True)
    full = {f"features.{k}": v for k, v in features.items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    path = tmp_path / "vgg16-full.pth"
    torch.save(full, path)
    loss = VGGLoss(path)
    torch.testing.assert_close(loss.features.stages[0][0].weight, features["0.weight"])


@pytest.mark.parametrize(("weights", "backbone", "message"), [
    (lambda tmp, shared: tmp / "nope.pth", "vgg16", "nope.pth does not exist"),
    (lambda tmp, shared: tmp / "bad.pth", "vgg16", "bad.pth is not a readable weight file"),
    (lambda tmp, shared: shared / "vgg16_features_imagenet.pth", "vgg19", "does not match the vgg19 feature layers"),
], ids=["missing", "not-a-weight-file", "other-backbone"])
def test_vgg_loss_weight_file_errors(shared_weights, tmp_path, weights, backbone, message):
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=message):
        VGGLoss(weights(tmp_path, shared_weights), backbone=backbone)


def test_vgg_loss_without_weights_anywhere(tmp_path, monkeypatch):
    """The message lists where it looked and how to pass a path."""
    monkeypatch.delenv("VID2VID_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(vgg_module, "weights_dirs", lambda: [tmp_path])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(
        UserError, match=r"no vgg16 ImageNet weights found \(looked in .*vgg16-397923af.pth\)"
    ):
        VGGLoss()


def test_find_vgg_weights_search_order(shared_weights, tmp_path, monkeypatch):
    real = shared_weights / "vgg16_features_imagenet.pth"
    monkeypatch.delenv("VID2VID_VGG_WEIGHTS", raising=False)
    monkeypatch.delenv("VID2VID_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(vgg_module, "weights_dirs", lambda: [tmp_path / "weights"])
    assert find_vgg_weights("vgg16") is None
    # The torch hub cache, under torchvision's file name.
    hub = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    hub.parent.mkdir(parents=True)
    hub.symlink_to(real)
    assert find_vgg_weights("vgg16") == hub
    # A weights folder comes before the hub cache.
    (tmp_path / "weights").mkdir()
    in_dir = tmp_path / "weights" / "vgg16_features_imagenet.pth"
    in_dir.symlink_to(real)
    assert find_vgg_weights("vgg16") == in_dir
    # The environment variable comes before folders, an explicit path before everything.
    monkeypatch.setenv("VID2VID_VGG_WEIGHTS", str(real))
    assert find_vgg_weights("vgg16") == real
    assert find_vgg_weights("vgg16", explicit=tmp_path / "missing.pth") is None


def test_weights_dirs_reads_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VID2VID_WEIGHTS_DIR", str(tmp_path))
    assert vgg_module.weights_dirs()[0] == tmp_path


# ----------------------------------------------------------------------------- image pool


def _images(n: int, start: int) -> torch.Tensor:
    """n distinguishable images: image i is filled with the value start + i."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone()


def _ids(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_pool_size_zero_returns_input():
    pool = ImagePool(0)
    x = _images(3, 0)
    assert torch.equal(pool.query(x), x) and len(pool) == 0


def test_pool_fills_then_swaps_conserving_images():
    pool = ImagePool(4, seed=0)
    out = pool.query(_images(3, 0))
    assert _ids(out) == [0, 1, 2] and len(pool) == 3
    # The 4th image fills the pool; the 5th and later may be swapped.
    assert _ids(pool.query(_images(1, 3))) == [3]
    swapped = 0
    for step in range(20):
        before = sorted(_ids(torch.cat(pool.images)))
        new = _images(2, 100 + 2 * step)
        out = pool.query(new)
        after = sorted(_ids(torch.cat(pool.images)))
        # Nothing is lost or duplicated: pool + outputs == old pool + new images.
        assert sorted(after + _ids(out)) == sorted(before + _ids(new))
        assert len(pool) == 4
        swapped += sum(o not in _ids(new) for o in _ids(out))
    assert 0 < swapped < 40  # p = 0.5 per image over 40 queries


def test_pool_outputs_are_detached():
    pool = ImagePool(2, seed=0)
    x = _images(3, 0).requires_grad_()
    assert not pool.query(x).requires_grad


def test_pool_state_round_trip_resumes_exactly(tmp_path):
    a = ImagePool(3, seed=7)
    for step in range(4):
        a.query(_images(2, 10 * step))
    path = tmp_path / "pool.pt"
    torch.save(a.state_dict(), path)
    b = ImagePool(3, seed=999)
    b.load_state_dict(torch.load(path, weights_only=True))
    for step in range(4, 12):
        x = _images(2, 10 * step)
        assert _ids(a.query(x)) == _ids(b.query(x))
    with pytest.raises(ValueError, match="size 3"):
        ImagePool(5).load_state_dict(a.state_dict())


def test_weights_holding_python_objects_are_refused_without_unsafe_advice(tmp_path):
    """A weight file that pickles Python objects is refused; the message says what is in it and
    never repeats PyTorch's advice to load it with weights_only=False (which would run its code)."""
    import argparse

    path = tmp_path / "objects.pth"
    torch.save({"0.weight": torch.zeros(1), "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(UserError) as info:
        VGGLoss(path)
    message = str(info.value)
    assert "holds Python objects (argparse.Namespace), which are never loaded" in message
    assert "weights_only" not in message and "\n" not in message
