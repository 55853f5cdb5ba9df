"""Holistic poses: face-70 and hands in the data format, clean-up, drawing, normalisation and face box,
and MediaPipe Holistic itself on real photos and clips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pose_utils import standing_pose

from vid2vid_app.errors import UserError
from vid2vid_app.models.face import face_box
from vid2vid_app.pose import (
    PoseSequence,
    RenderStyle,
    compute_stats,
    fill_gaps,
    normalize,
    parts,
    render_pose,
    smooth,
)
from vid2vid_app.pose import skeleton as sk

W, H = 200, 300


def holistic_pose(width: int = W, height: int = H, conf: float = 0.9) -> np.ndarray:
    """(145, 3): the standing test figure with a face-70 on its head and two open hands at its wrists."""
    body = standing_pose(width, height, conf)
    nose = body[sk.NOSE, :2]
    face = np.zeros((parts.NUM_FACE, 3), np.float32)
    angles = np.linspace(0, 2 * np.pi, parts.NUM_FACE, endpoint=False)
    face[:, 0] = nose[0] + 0.04 * width * np.cos(angles)
    face[:, 1] = nose[1] + 0.04 * height * np.sin(angles)
    face[:, 2] = conf
    hands = np.zeros((2, parts.NUM_HAND, 3), np.float32)
    for side, wrist, direction in ((parts.LEFT_HAND, sk.L_WRIST, 1), (parts.RIGHT_HAND, sk.R_WRIST, -1)):
        for j in range(parts.NUM_HAND):
            finger, joint = (j - 1) // 4, (j - 1) % 4 + 1 if j else 0
            hands[side, j, 0] = body[wrist, 0] + direction * 0.012 * width * joint
            hands[side, j, 1] = body[wrist, 1] + 0.012 * height * (finger - 2) * (j > 0)
        hands[side, :, 2] = conf
    return parts.pack(body, face, hands)


def sequence(n: int = 10, fps: float = 30.0) -> PoseSequence:
    return PoseSequence.from_packed(np.repeat(holistic_pose()[None], n, axis=0), (W, H), fps)


# --- the face-70 mapping -----------------------------------------------------------------------------

def test_face70_indices_lie_on_the_mesh_contours_they_name():
    from mediapipe.python.solutions import face_mesh_connections as fm

    def points(edges):
        return {i for edge in edges for i in edge}

    idx = parts.FACE70_FROM_MESH
    assert len(idx) == 70 and len(set(idx)) == 70 and all(0 <= i < 478 for i in idx)
    checks = [(parts.JAW, fm.FACEMESH_FACE_OVAL), (parts.RIGHT_BROW, fm.FACEMESH_RIGHT_EYEBROW),
              (parts.LEFT_BROW, fm.FACEMESH_LEFT_EYEBROW), (parts.RIGHT_EYE, fm.FACEMESH_RIGHT_EYE),
              (parts.LEFT_EYE, fm.FACEMESH_LEFT_EYE), (parts.NOSE_RIDGE + parts.NOSE_BASE, fm.FACEMESH_NOSE),
              (parts.OUTER_LIPS + parts.INNER_LIPS, fm.FACEMESH_LIPS)]
    for rows, edges in checks:
        assert {idx[r] for r in rows} <= points(edges), rows
    # The pupils are the iris centres, each inside its iris ring (469-472 right, 474-477 left).
    assert idx[parts.RIGHT_PUPIL] == 468 and idx[parts.LEFT_PUPIL] == 473


def test_face70_without_iris_points_puts_pupils_at_the_eye_centres():
    mesh = np.random.default_rng(0).uniform(0, 100, size=(468, 2))
    face = parts.face70_from_mesh(mesh)
    np.testing.assert_allclose(face[parts.RIGHT_PUPIL], face[list(parts.RIGHT_EYE)].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(face[:68], mesh[list(parts.FACE68_FROM_MESH)], rtol=1e-6)


# --- data format -------------------------------------------------------------------------------------

def test_pack_unpack_round_trip_and_body_only_stays_33_points():
    pose = holistic_pose()
    body, face, hands = parts.unpack(pose)
    assert body.shape == (33, 3) and face.shape == (70, 3) and hands.shape == (2, 21, 3)
    np.testing.assert_array_equal(parts.pack(body, face, hands), pose)
    assert parts.pack(body, None, None).shape == (33, 3)
    assert parts.unpack(body)[1] is None


def test_keypoints_file_round_trip_and_old_files_load_as_body_only(tmp_path):
    seq = sequence()
    seq.hands[3, parts.RIGHT_HAND] = parts.missing((21, 3))
    seq.save(tmp_path / "k.npz")
    back = PoseSequence.load(tmp_path / "k.npz")
    assert back.landmarks == "holistic"
    np.testing.assert_array_equal(back.packed(), seq.packed())
    with np.load(tmp_path / "k.npz") as z:
        assert z["face"].shape == (10, 70, 3) and z["hands"].shape == (10, 2, 21, 3)
    # A file as older versions wrote it: keypoints, fps and size only.
    np.savez(tmp_path / "old.npz", keypoints=seq.keypoints, fps=np.float64(30), size=np.array([W, H]))
    old = PoseSequence.load(tmp_path / "old.npz")
    assert old.landmarks == "body" and old.face is None and old.packed().shape == (10, 33, 3)


def test_keypoints_file_with_a_face_of_the_wrong_length_is_refused(tmp_path):
    seq = sequence()
    np.savez(tmp_path / "bad.npz", keypoints=seq.keypoints, fps=np.float64(30), size=np.array([W, H]),
             face=seq.face[:5], hands=seq.hands)
    with pytest.raises(UserError, match="face/hands"):
        PoseSequence.load(tmp_path / "bad.npz")


def test_openpose_json_holds_face_70_and_both_hands_with_zeros_where_not_found(tmp_path):
    seq = sequence(3)
    seq.face[1] = parts.missing((70, 3))  # frame 1: no face
    seq.hands[2, parts.LEFT_HAND] = parts.missing((21, 3))  # frame 2: no left hand
    paths = seq.to_openpose_json(tmp_path / "op")
    people = [json.loads(p.read_text())["people"][0] for p in paths]
    for person in people:
        assert len(person["face_keypoints_2d"]) == 210
        assert len(person["hand_left_keypoints_2d"]) == len(person["hand_right_keypoints_2d"]) == 63
    assert people[0]["face_keypoints_2d"][:3] == pytest.approx(list(seq.face[0, 0]), abs=1e-3)
    assert people[0]["hand_right_keypoints_2d"][:3] == pytest.approx(list(seq.hands[0, 1, 0]), abs=1e-3)
    assert not any(people[1]["face_keypoints_2d"]) and any(people[1]["hand_left_keypoints_2d"])
    assert not any(people[2]["hand_left_keypoints_2d"]) and any(people[2]["face_keypoints_2d"])


# --- clean-up per part -------------------------------------------------------------------------------

def test_a_short_hand_gap_is_bridged_while_a_long_one_stays_missing():
    seq = sequence(30)
    seq.hands[:, parts.LEFT_HAND, :, 0] += np.arange(30)[:, None]  # the left hand moves right 1 px/frame
    seq.hands[10:12, parts.LEFT_HAND] = parts.missing((2, 21, 3))  # 2 frames: bridged
    seq.hands[5:25, parts.RIGHT_HAND] = parts.missing((20, 21, 3))  # 20 frames: more than max_gap
    out, report = fill_gaps(seq, max_gap=5)
    found = out.part_found()
    assert found["left_hand"].all() and not found["right_hand"][5:25].any()
    np.testing.assert_allclose(out.hands[10:12, 0, 0, 0], seq.hands[9, 0, 0, 0] + np.array([1, 2]), atol=1e-4)
    assert report.detected_frames == 30 and report.filled_frames == 0  # the body had no gap


def test_smoothing_keeps_each_part_to_its_own_runs_and_no_frame_is_dropped():
    rng = np.random.default_rng(1)
    seq = sequence(40)
    seq.hands[..., :2] += rng.normal(0, 2, size=seq.hands[..., :2].shape).astype(np.float32)
    seq.face[15:20] = parts.missing((5, 70, 3))
    out = smooth(seq)
    assert len(out) == 40 and out.valid.all()
    assert not out.part_found()["face"][15:20].any() and out.part_found()["face"][:15].all()
    jitter = np.abs(np.diff(out.hands[:, 0, :, :2], n=2, axis=0)).mean()
    assert jitter < 0.5 * np.abs(np.diff(seq.hands[:, 0, :, :2], n=2, axis=0)).mean()


# --- drawing -----------------------------------------------------------------------------------------

def test_missing_face_and_hands_leave_the_body_drawing_unchanged():
    body = standing_pose(W, H)
    packed = parts.pack(body, None, parts.missing((2, 21, 3)))
    np.testing.assert_array_equal(render_pose(packed, W, H), render_pose(body, W, H))


def test_face_and_hand_bones_are_drawn_in_their_colours_where_found():
    style = RenderStyle(thickness_scale=2.0)
    pose = holistic_pose()
    img = render_pose(pose, W, H, style)
    plain = render_pose(pose[:33], W, H, style)
    face_box_px = img[25:45, 85:115]
    assert (np.abs(face_box_px.astype(int) - plain[25:45, 85:115]).sum(axis=2) > 60).sum() > 20
    hand_colours = {c for _, _, c in parts.HAND_BONES}
    left = img[60:90, 184:200].reshape(-1, 3)
    assert any(tuple(px) in hand_colours for px in left)
    # Confidence 0: the part is not drawn at all (only the body's coarse points remain).
    pose[parts.FACE_START:, 2] = 0.0
    np.testing.assert_array_equal(render_pose(pose, W, H, style), plain)


# --- normalisation and the face box -----------------------------------------------------------------------

def test_normalisation_moves_face_and_hands_with_the_body():
    rng = np.random.default_rng(2)
    n = 20
    packed = np.repeat(holistic_pose()[None], n, axis=0)
    packed[:, :, 1] += rng.uniform(-20, 20, size=(n, 1))  # the person walks up and down
    seq = PoseSequence.from_packed(packed, (W, H), 30.0)
    target = compute_stats(PoseSequence(seq.keypoints * np.array([1.3, 1.3, 1], np.float32), (W, H), 30.0),
                           min_frames=3)
    out = normalize(seq, compute_stats(seq, min_frames=3), target)
    assert out.landmarks == "holistic"
    # Each frame is one similarity map: offsets of face/hand points from the nose scale with the body.
    scale = (out.keypoints[:, sk.L_ANKLE, 1] - out.keypoints[:, sk.NOSE, 1]) / (
        seq.keypoints[:, sk.L_ANKLE, 1] - seq.keypoints[:, sk.NOSE, 1])
    rel_in = seq.face[:, :, :2] - seq.keypoints[:, None, sk.NOSE, :2]
    rel_out = out.face[:, :, :2] - out.keypoints[:, None, sk.NOSE, :2]
    np.testing.assert_allclose(rel_out, rel_in * scale[:, None, None], atol=1e-2)
    rel_hand = out.hands[:, 0, :, :2] - out.keypoints[:, None, sk.L_WRIST, :2]
    np.testing.assert_allclose(rel_hand, (seq.hands[:, 0, :, :2] - seq.keypoints[:, None, sk.L_WRIST, :2])
                               * scale[:, None, None], atol=1e-2)


def test_face_box_follows_the_face_landmarks_when_present():
    pose = holistic_pose()
    pose[parts.FACE_START:parts.HANDS_START, 0] += 10  # the face sits 10 px right of the body's nose
    box = face_box(pose, (W, H), side=40)
    face = pose[parts.FACE_START:parts.HANDS_START, :2]
    centre = (face.min(axis=0) + face.max(axis=0)) / 2
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == pytest.approx(tuple(centre), abs=1)
    body_box = face_box(pose[:33], (W, H), side=40)  # without the face: around the nose
    assert (body_box[0] + body_box[2]) / 2 == pytest.approx(pose[sk.NOSE, 0], abs=1)
    pose[parts.FACE_START:, 2] = 0  # face not found: the body's nose again
    assert face_box(pose, (W, H), side=40) == body_box


# --- real MediaPipe Holistic -------------------------------------------------------------------------

def _photo(bundled_samples, name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(bundled_samples / "photos" / name)), cv2.COLOR_BGR2RGB)


def test_holistic_finds_a_symmetric_face_on_a_real_photo(bundled_samples):
    from vid2vid_app.pose import PoseDetector

    image = _photo(bundled_samples, "astronaut.jpg")
    with PoseDetector(static_image_mode=True, landmarks="holistic") as det:
        pose = det.detect(image)
    assert pose.shape == (145, 3)
    _, face, _ = parts.unpack(pose)
    assert (face[:, 2] > 0.5).all(), "the astronaut faces the camera"
    # Face-70 follows iBUG's sides: every right-side point mirrors its left twin about the midline.
    midline = np.median(face[[27, 28, 29, 30, 33, 8, 51, 57], 0])
    width = face[16, 0] - face[0, 0]
    pairs = [(i, 16 - i) for i in range(8)] + [(36, 45), (39, 42), (48, 54), (31, 35), (17, 26), (68, 69)]
    for a, b in pairs:
        assert face[a, 0] < face[b, 0], (a, b)
        assert abs((face[a, 0] + face[b, 0]) / 2 - midline) < 0.08 * width, (a, b)
    assert face[8, 1] > face[57, 1] > face[33, 1] > face[39, 1] > face[21, 1]  # chin, lip, nose, eye, brow
    # The face lies on the body's head: its centre is near the body's nose.
    assert np.linalg.norm(face[30, :2] - pose[sk.NOSE, :2]) < 0.3 * width


@pytest.mark.slow
def test_a_face_seen_from_behind_gets_confidence_zero_and_no_frame_is_dropped(bundled_samples):
    """The woman in front of the two-person clip turns her back to the camera: Holistic fits a
    face to the back of her head, which the body's orientation rejects."""
    from vid2vid_app.pose.parallel import detect_chunked
    from vid2vid_app.video import FrameRange, probe

    clip = bundled_samples / "source_two_people.mp4"
    info = probe(clip)
    seq = detect_chunked(FrameRange(clip), info.frame_count, float(info.fps), (info.width, info.height),
                         workers=1, landmarks="holistic")
    assert len(seq) == info.frame_count and seq.valid.all()
    found = seq.part_found()
    assert not found["face"].any()
    assert (seq.face[:, :, 2] == 0).all() and np.isnan(seq.face[:, :, :2]).all()
    assert found["left_hand"].sum() > 20  # her left hand is in view in part of the clip
    # A frame without a hand keeps its body.
    no_hand = ~found["right_hand"]
    assert no_hand.any() and seq.valid[no_hand].all()


# --- the commands ------------------------------------------------------------------------------------

def _dance_pose(*args):
    from click.testing import CliRunner

    from vid2vid_app.cli.dance import dance

    return CliRunner().invoke(dance, ["pose", *map(str, args)])


def test_dance_pose_writes_face_and_hands_by_default_and_body_only_on_request(bundled_samples, tmp_path):
    photo = bundled_samples / "photos" / "astronaut.jpg"
    result = _dance_pose(photo, "-o", tmp_path / "h")
    assert result.exit_code == 0, result.output
    assert "found: face 100%" in result.output
    seq = PoseSequence.load(tmp_path / "h" / "keypoints.npz")
    assert seq.landmarks == "holistic" and seq.part_found()["face"].all()
    person = json.loads((tmp_path / "h" / "openpose" / "astronaut_keypoints.json").read_text())["people"][0]
    assert len(person["face_keypoints_2d"]) == 210 and any(person["face_keypoints_2d"])
    assert len(person["hand_left_keypoints_2d"]) == 63 and not any(person["hand_left_keypoints_2d"])

    result = _dance_pose(photo, "-o", tmp_path / "b", "--landmarks", "body")
    assert result.exit_code == 0, result.output
    body = PoseSequence.load(tmp_path / "b" / "keypoints.npz")
    assert body.landmarks == "body" and body.packed().shape == (1, 33, 3)
    assert json.loads((tmp_path / "b" / "openpose" / "astronaut_keypoints.json").read_text())[
        "people"][0]["face_keypoints_2d"] == []


def test_dance_pose_refuses_an_unknown_landmark_set_and_zero_workers(bundled_samples, tmp_path):
    photo = bundled_samples / "photos" / "camera.jpg"
    for args in (["--landmarks", "hands"], ["--workers", "0"]):
        result = _dance_pose(photo, "-o", tmp_path / "x", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_prepared_training_data_carries_face_and_hands(bundled_samples, tmp_path):
    """dance train's preparation stores holistic poses (T, 145, 3) and its dataset jitters the face
    and each hand as one piece, so their shapes survive."""
    from vid2vid_app.dance.dataset import TemporalPairDataset
    from vid2vid_app.dance.prepare import prepare_dance_data

    clip = bundled_samples / "target_cam02.mp4"
    data = prepare_dance_data([clip], tmp_path / "data", (64, 128), landmarks="holistic", workers=2, quiet=True)
    assert data.keypoints.shape == (100, 145, 3) and data.canvas_keypoints.shape == (100, 145, 3)
    marker = json.loads((tmp_path / "data" / "poses.json").read_text())
    assert marker["settings"]["landmarks"] == "holistic"
    dataset = TemporalPairDataset(data, data.split(0.1)[0], factor=1, style=RenderStyle(), pose_jitter=0.05)
    rng_state = np.random.get_state()
    offsets = dataset._jitter(np.zeros((1, 2)), 3.0)
    np.random.set_state(rng_state)
    assert offsets.shape == (145, 2)
    for part in (slice(33, 103), slice(103, 124), slice(124, 145)):
        assert np.allclose(offsets[part], offsets[part][0])  # one offset per part
    assert len(np.unique(offsets[:33, 0])) == 33  # body points move on their own
    item = dataset[0]
    assert item["pose0"].shape == (3, 128, 64)


def test_transfer_keeps_face_and_hands_of_given_poses_and_notes_missing_ones(tmp_path):
    """--poses: holistic keypoints keep their face and hands through step 1 and 2 of transfer; a
    body-only file given to a holistic model is used, with a note saying the figures lack them."""
    from types import SimpleNamespace

    from vid2vid_app.dance.transfer import pose_notes, read_source_poses, to_target_poses

    seq = sequence(12)
    poses = read_source_poses(seq, tmp_path / "src.mp4", 12, (W, H), 2, 10)
    assert poses.filled.shape == (8, 145, 3)
    target = to_target_poses(poses, (2 * W, 2 * H), None, normalize=False)
    np.testing.assert_allclose(target[:, parts.FACE_START:, :2], 2 * seq.packed()[2:10, parts.FACE_START:, :2],
                               rtol=1e-5)
    assert pose_notes(poses, SimpleNamespace(landmarks="holistic")) == []
    body_only = read_source_poses(PoseSequence(seq.keypoints, (W, H), 30.0), tmp_path / "src.mp4", 12, (W, H), 0, 12)
    assert "no face or hands" in pose_notes(body_only, SimpleNamespace(landmarks="holistic"))[0]
    assert pose_notes(body_only, SimpleNamespace(landmarks="body")) == []
