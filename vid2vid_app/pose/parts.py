"""Face and hand landmarks (MediaPipe Holistic) in OpenPose order, and the packed layout.

Besides the 33 body landmarks (:mod:`.skeleton`), a *holistic* pose has

* ``face`` (70, 3): OpenPose's face-70 order, i.e. the 68 iBUG 300-W points plus the two pupils,
  each picked from MediaPipe's 478-point face mesh (:data:`FACE70_FROM_MESH`);
* ``hands`` (2, 21, 3): index 0 the person's LEFT hand, 1 the RIGHT hand, in MediaPipe's hand
  order, which is OpenPose's: 0 wrist, then four points per finger from the palm outwards
  (1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky).

Every point is (x px, y px, confidence); a part that was not found has NaN coordinates and
confidence 0, exactly like a body frame without a person.

The face-70 mapping
-------------------
iBUG numbering runs over the image of a face looking at the camera: point 0 is the jaw at the
face's own right (the image's left), the jaw runs to the chin (8) and on to 16; 17-21 the right
brow from outside in, 22-26 the left brow from inside out; 27-30 the nose ridge from the root to
the tip, 31-35 the base of the nose from right to left; 36-41 the right eye (outer corner, upper
lid, inner corner, lower lid), 42-47 the left eye (inner corner first); 48-59 the outer lip line
from the right corner over the upper lip and back along the lower lip; 60-67 the inner lip line;
OpenPose adds 68 (right pupil) and 69 (left pupil). MediaPipe's mesh names sides the same way
(its "right eye" 33/133 is the face's own right eye), and its published contour chains
(``mediapipe.python.solutions.face_mesh_connections``: FACE_OVAL, *_EYEBROW, *_EYE, NOSE, LIPS)
give the order of the mesh points along each contour. Each iBUG point is the mesh point of that
chain at about the same fraction of the way along it:

====================  =========  ===========================================================
iBUG points           part       mesh indices
====================  =========  ===========================================================
0-16                  jaw        127 234 93 132 58 172 150 176 **152** 400 379 397 288 361 323 454 356
                                 (the lower face oval; its mesh points crowd near the chin, so
                                 every second one is taken there)
17-21 / 22-26         brows      70 63 105 66 107 / 336 296 334 293 300 (upper brow edge)
27-30                 nose ridge 168 197 5 1 (root, two ridge points, tip)
31-35                 nose base  98 97 2 326 327
36-41                 right eye  33 160 158 133 153 144
42-47                 left eye   362 385 387 263 373 380
48-59                 outer lips 61 40 37 0 267 270 291 321 314 17 84 91
60-67                 inner lips 78 81 13 311 308 402 14 178
68, 69                pupils     468, 473 (iris centres of the refined mesh; without them the
                                 mean of the eye's six points)
====================  =========  ===========================================================

The table is mirror-symmetric: every right-side index maps to MediaPipe's mirrored left-side
index (e.g. 33 <-> 263, 61 <-> 291). The tests check each index against the mesh's own contour
chains, and the symmetry and the order of the features on a real photo.

The packed layout
-----------------
Code that only moves points (letterboxing, normalisation, jitter) handles a holistic pose as one
(K, 3) array of ``K = 145`` rows: body 0-32, face 33-102, left hand 103-123, right hand 124-144
(:func:`pack` / :func:`unpack`). A body-only pose stays (33, 3), so old files and models are
untouched.
"""

from __future__ import annotations

import numpy as np

from . import skeleton as sk

NUM_FACE = 70
NUM_HAND = 21
LEFT_HAND, RIGHT_HAND = 0, 1  # index into hands (2, 21, 3): the person's own sides

# --- face-70 from the face mesh (see the module docstring) ----------------------------------------
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE_RIDGE = tuple(range(27, 31))
NOSE_BASE = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))
RIGHT_PUPIL, LEFT_PUPIL = 68, 69
CHIN = 8

FACE68_FROM_MESH: tuple[int, ...] = (
    127, 234, 93, 132, 58, 172, 150, 176, 152, 400, 379, 397, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107,  # right brow
    336, 296, 334, 293, 300,  # left brow
    168, 197, 5, 1,  # nose ridge
    98, 97, 2, 326, 327,  # nose base
    33, 160, 158, 133, 153, 144,  # right eye
    362, 385, 387, 263, 373, 380,  # left eye
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips
)
# Iris centres of the refined (478-point) mesh: 468 is the right iris, 473 the left.
PUPILS_FROM_MESH: tuple[int, int] = (468, 473)
FACE70_FROM_MESH: tuple[int, ...] = FACE68_FROM_MESH + PUPILS_FROM_MESH

# Mesh points used to check that a face mesh is plausible for the body it belongs to: the face's
# "up" runs from the chin (152) to the root of the nose (168).
MESH_CHIN, MESH_NOSE_ROOT = 152, 168


def face70_from_mesh(mesh_xy: np.ndarray) -> np.ndarray:
    """(N, 2) face-mesh points (N = 468 or 478) -> (70, 2) in face-70 order.

    With the plain 468-point mesh (no iris points) each pupil is the mean of its eye's six points.
    """
    mesh_xy = np.asarray(mesh_xy, dtype=np.float32)
    if mesh_xy.ndim != 2 or mesh_xy.shape[0] < 468:
        raise ValueError(f"expected (468 or 478, 2) face-mesh points, got shape {mesh_xy.shape}")
    out = np.empty((NUM_FACE, mesh_xy.shape[1]), dtype=np.float32)
    out[:68] = mesh_xy[list(FACE68_FROM_MESH)]
    if mesh_xy.shape[0] >= 478:
        out[68:] = mesh_xy[list(PUPILS_FROM_MESH)]
    else:
        out[RIGHT_PUPIL] = out[list(RIGHT_EYE)].mean(axis=0)
        out[LEFT_PUPIL] = out[list(LEFT_EYE)].mean(axis=0)
    return out


# --- drawing: face contours and hand bones ---------------------------------------------------------
def _chain(points: tuple[int, ...], closed: bool = False) -> tuple[tuple[int, int], ...]:
    pairs = tuple(zip(points[:-1], points[1:], strict=True))
    return pairs + ((points[-1], points[0]),) if closed else pairs


# (name, segments, RGB colour). Light, distinct tints per feature, as in the Everybody Dance Now
# figures, where the face is drawn in thin pale lines over the body's saturated limbs.
FACE_FEATURES: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[int, int, int]], ...] = (
    ("jaw", _chain(JAW), (255, 255, 255)),
    ("right_brow", _chain(RIGHT_BROW), (255, 230, 150)),
    ("left_brow", _chain(LEFT_BROW), (255, 230, 150)),
    ("nose", _chain(NOSE_RIDGE) + _chain(NOSE_BASE) + ((30, 33),), (150, 230, 255)),
    ("right_eye", _chain(RIGHT_EYE, closed=True), (170, 255, 170)),
    ("left_eye", _chain(LEFT_EYE, closed=True), (170, 255, 170)),
    ("outer_lips", _chain(OUTER_LIPS, closed=True), (255, 170, 200)),
    ("inner_lips", _chain(INNER_LIPS, closed=True), (255, 120, 160)),
)
PUPIL_COLOR = (255, 255, 255)

FINGERS: tuple[tuple[int, ...], ...] = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16),
                                        (17, 18, 19, 20))


def _hand_bones() -> tuple[tuple[int, int, tuple[int, int, int]], ...]:
    """The 20 bones (wrist to each finger base, then along the finger), each in its own colour:
    OpenPose's hand rendering walks the hue wheel once over the bones, so every finger has its own
    hue and its joints step lighter outwards."""
    import colorsys

    bones = []
    for finger in FINGERS:
        bones.extend(_chain((0,) + finger))
    out = []
    for i, (a, b) in enumerate(bones):
        r, g, bl = colorsys.hsv_to_rgb(i / len(bones), 1.0, 1.0)
        out.append((a, b, (round(255 * r), round(255 * g), round(255 * bl))))
    return tuple(out)


HAND_BONES: tuple[tuple[int, int, tuple[int, int, int]], ...] = _hand_bones()

# --- packed layout ---------------------------------------------------------------------------------
FACE_START = sk.NUM_LANDMARKS                    # 33
HANDS_START = FACE_START + NUM_FACE              # 103
NUM_PACKED = HANDS_START + 2 * NUM_HAND          # 145
LANDMARK_SETS = ("holistic", "body")


def points_for(landmarks: str) -> int:
    """Rows of a packed pose: 145 for "holistic", 33 for "body"."""
    if landmarks not in LANDMARK_SETS:
        raise ValueError(f"landmarks must be one of {', '.join(LANDMARK_SETS)}, got {landmarks!r}")
    return NUM_PACKED if landmarks == "holistic" else sk.NUM_LANDMARKS


def missing(shape: tuple[int, ...]) -> np.ndarray:
    """float32 array of ``shape`` (..., 3) meaning "not found": NaN coordinates, confidence 0."""
    out = np.zeros(shape, dtype=np.float32)
    out[..., :2] = np.nan
    return out


def pack(body: np.ndarray, face: np.ndarray | None, hands: np.ndarray | None) -> np.ndarray:
    """(..., 33, 3) body, (..., 70, 3) face, (..., 2, 21, 3) hands -> (..., 145, 3).

    With ``face`` and ``hands`` both None the body comes back unchanged (a body-only pose); one of
    them None stands for "not found" (NaN, confidence 0).
    """
    body = np.asarray(body, dtype=np.float32)
    if face is None and hands is None:
        return body
    lead = body.shape[:-2]
    face = missing(lead + (NUM_FACE, 3)) if face is None else np.asarray(face, dtype=np.float32)
    hands = missing(lead + (2, NUM_HAND, 3)) if hands is None else np.asarray(hands, dtype=np.float32)
    return np.concatenate([body, face, hands.reshape(lead + (2 * NUM_HAND, 3))], axis=-2)


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(..., 145, 3) -> body (..., 33, 3), face (..., 70, 3), hands (..., 2, 21, 3) (views);
    a (..., 33, 3) body-only pose -> (body, None, None)."""
    packed = np.asarray(packed)
    k = packed.shape[-2]
    if k == sk.NUM_LANDMARKS:
        return packed, None, None
    if k != NUM_PACKED or packed.shape[-1] != 3:
        raise ValueError(f"expected (..., {sk.NUM_LANDMARKS} or {NUM_PACKED}, 3) keypoints, got {packed.shape}")
    lead = packed.shape[:-2]
    return (packed[..., :FACE_START, :], packed[..., FACE_START:HANDS_START, :],
            packed[..., HANDS_START:, :].reshape(lead + (2, NUM_HAND, 3)))


def found(part: np.ndarray) -> np.ndarray:
    """(..., N, 3) -> (...,) bool: the part was found (a point with confidence > 0 and finite x, y)."""
    part = np.asarray(part)
    return ((np.nan_to_num(part[..., 2]) > 0) & np.isfinite(part[..., :2]).all(axis=-1)).any(axis=-1)
