"""The elephant tool: paste geometry (mask respected, full opacity, grid, scales), the default Shapes
object and scenes, each bad-input error, the pipeline on fake detectors with known answers, and
end-to-end runs of the command on two freshly initialised tiny YOLOv3 checkpoints."""
import json
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from gluon_bof.engine.checkpoint import save_checkpoint
from gluon_bof.model import get_model
from gluon_bof.tools import elephant
from gluon_bof.tools.elephant_frames import (ElephantInputError, PastedObject, Scene, check_fits, default_object,
                                             default_scenes, grid_positions, load_object, load_scenes, make_frames,
                                             paste, scale_object)
from gluon_bof.tools.run_model import Detections, load_run_model

SHAPES = ["circle", "rectangle", "triangle", "star", "cross", "ring"]
MAGENTA = (255, 0, 255)


def l_object(w=10, h=8):
    """A magenta L: the left column band and the bottom row band of a ``w x h`` box."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:] = MAGENTA
    mask = np.zeros((h, w), bool)
    mask[:, :3] = True
    mask[-3:, :] = True
    image[~mask] = (0, 255, 0)  # outside the mask: must never reach the frame
    return PastedObject(image, mask, "L")


def write_rgb(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return str(path)


# ---- paste geometry ----

def test_paste_respects_mask_at_full_opacity():
    scene = np.full((40, 60, 3), 7, np.uint8)
    obj = l_object()
    frame, mask, box = paste(scene, obj, 13, 21)
    assert box == (13, 21, 22, 28)
    assert mask.sum() == obj.mask.sum() and mask[21:29, 13:23].tolist() == obj.mask.tolist()
    assert (frame[mask] == MAGENTA).all()        # full opacity: the object's pixels exactly
    assert (frame[~mask] == 7).all()             # the rest of the scene untouched, no green
    assert (scene == 7).all()                    # the scene itself is not modified
    with pytest.raises(ValueError, match="leaves scene"):
        paste(scene, obj, 55, 0)


def test_grid_positions_span_the_scene_row_by_row():
    assert grid_positions((100, 60), (20, 10), 3, 2) == [
        (0, 0, 0, 0), (1, 0, 40, 0), (2, 0, 80, 0), (0, 1, 0, 50), (1, 1, 40, 50), (2, 1, 80, 50)]
    assert grid_positions((100, 60), (20, 10), 1, 1) == [(0, 0, 40, 25)]
    with pytest.raises(ValueError, match="does not fit"):
        grid_positions((100, 60), (120, 10), 2, 2)


def test_scale_object_resizes_image_and_mask():
    square = PastedObject(np.full((10, 10, 3), 200, np.uint8), np.ones((10, 10), bool), "sq")
    assert scale_object(square, 2.0).size == (20, 20) and scale_object(square, 2.0).mask.all()
    half = scale_object(square, 0.5)
    assert half.size == (5, 5) and (half.image == 200).all()
    disk = np.zeros((40, 40), np.uint8)
    cv2.circle(disk, (20, 20), 19, 1, -1)
    obj = PastedObject(np.full((40, 40, 3), 9, np.uint8), disk.astype(bool), "disk")
    big = scale_object(obj, 1.5)
    assert big.size in ((58, 58), (59, 59))  # the disk's 39-pixel extent scaled, cropped again (not 60)
    assert big.mask.sum() == pytest.approx(obj.mask.sum() * 1.5 ** 2, rel=0.03)
    diagonal = PastedObject(np.zeros((10, 10, 3), np.uint8), np.eye(10, dtype=bool), "diagonal")
    with pytest.raises(ElephantInputError, match=r"diagonal \[mask_empty\]: the mask scaled by 0.1 has no object"):
        scale_object(diagonal, 0.1)


def test_make_frames_order_and_count():
    scenes = [Scene(np.zeros((40, 60, 3), np.uint8), "a"), Scene(np.zeros((50, 50, 3), np.uint8), "b")]
    objects = [(s, scale_object(l_object(), s)) for s in (1.0, 2.0)]
    frames = list(make_frames(scenes, objects, 3, 2))
    assert len(frames) == 2 * 2 * 6 and [f.index for f in frames] == list(range(24))
    assert [(f.scene, f.scale) for f in frames[::6]] == [(0, 1.0), (0, 2.0), (1, 1.0), (1, 2.0)]
    last = frames[-1]
    assert (last.column, last.row, last.x, last.y, last.box) == (2, 1, 30, 34, (30, 34, 49, 49))
    assert (last.image[last.mask] == MAGENTA).all()


def test_load_object_crops_to_mask_and_reads_alpha(tmp_path):
    rgb = np.zeros((30, 20, 3), np.uint8)
    rgb[5:15, 4:12] = (10, 20, 30)
    mask = np.zeros((30, 20, 3), np.uint8)
    mask[5:15, 4:12] = 255
    mask[5, 4] = 100  # grey below the cut: not object
    obj = load_object(write_rgb(tmp_path / "o.png", rgb), write_rgb(tmp_path / "m.png", mask))
    assert obj.size == (8, 10) and obj.mask.sum() == 79 and not obj.mask[0, 0]
    assert (obj.image[obj.mask] == (10, 20, 30)).all()
    rgba = np.dstack([rgb[:, :, ::-1], mask[:, :, 0]])
    assert cv2.imwrite(str(tmp_path / "a.png"), rgba)
    alpha = load_object(str(tmp_path / "a.png"))
    assert alpha.size == (8, 10) and alpha.mask.tolist() == obj.mask.tolist()


def test_default_object_is_an_exactly_masked_circle():
    obj, idx = default_object()
    assert obj.class_name == "circle" and min(obj.size) >= 60 and obj.size[0] == obj.size[1]
    img = obj.image.astype(np.float64)
    ring = obj.mask & ~cv2.erode(obj.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    halo = cv2.dilate(obj.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~obj.mask
    core = np.median(img[obj.mask], axis=0)
    # the mask's own border pixels have the shape's colour, the pixels just outside do not
    assert np.abs(img[ring] - core).sum(1).mean() < 30 < 100 < np.abs(img[halo] - core).sum(1).mean()
    scenes = default_scenes(3, skip=idx)
    assert len(scenes) == 3 and all("#%d>" % idx not in s.name for s in scenes)
    assert default_scenes(2, skip=0)[0].name.endswith("#1>")


# ---- bad inputs ----

@pytest.fixture
def files(tmp_path):
    rgb = np.full((20, 30, 3), 90, np.uint8)
    mask = np.zeros((20, 30, 3), np.uint8)
    mask[4:16, 5:25] = 255
    paths = {"object": write_rgb(tmp_path / "obj.png", rgb), "mask": write_rgb(tmp_path / "mask.png", mask),
             "small_mask": write_rgb(tmp_path / "small.png", mask[:10]),
             "empty_mask": write_rgb(tmp_path / "empty.png", np.zeros_like(mask)),
             "scene": write_rgb(tmp_path / "scene.jpg", np.full((64, 80, 3), 30, np.uint8)),
             "tiny_scene": write_rgb(tmp_path / "tiny.png", np.full((10, 40, 3), 30, np.uint8)),
             "noise": write_rgb(tmp_path / "noise.png", np.random.RandomState(0).randint(0, 256, (64, 80, 3)))}
    (tmp_path / "broken.png").write_text("not an image")
    paths["broken"] = str(tmp_path / "broken.png")
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.txt").write_text("x")
    paths["empty_dir"] = str(tmp_path / "no_images")
    return paths


def test_bad_object_inputs_name_file_and_rule(files):
    with pytest.raises(ElephantInputError, match=r"small.png \[mask_size\]: the mask is 30x10 pixels but the "
                                                 r"object image .*obj.png is 30x20"):
        load_object(files["object"], files["small_mask"])
    with pytest.raises(ElephantInputError, match=r"empty.png \[mask_empty\]: the mask has no object pixel"):
        load_object(files["object"], files["empty_mask"])
    with pytest.raises(ElephantInputError, match=r"obj.png \[no_alpha\]: the object image has no alpha channel"):
        load_object(files["object"])
    with pytest.raises(ValueError, match=r"broken.png \[image_unreadable\]"):
        load_object(files["broken"], files["mask"])
    with pytest.raises(ValueError, match=r"missing.png \[image_missing\]"):
        load_object(files["object"], files["object"].replace("obj.png", "missing.png"))


def test_bad_scenes_and_sizes(files):
    obj = load_object(files["object"], files["mask"])
    with pytest.raises(ElephantInputError, match=r"nowhere \[scene_missing\]: no such file"):
        load_scenes([files["scene"], "nowhere"])
    with pytest.raises(ElephantInputError, match=r"no_images \[scene_missing\]: the folder holds no image"):
        load_scenes([files["empty_dir"]])
    with pytest.raises(ValueError, match=r"broken.png \[image_unreadable\]"):
        load_scenes([files["broken"]])
    scenes = load_scenes([files["scene"], files["tiny_scene"]])
    with pytest.raises(ElephantInputError, match=r"obj.png \[object_too_large\]: the object is 20x12 pixels at "
                                                 r"scale 1, larger than scene .*tiny.png \(40x10\)"):
        check_fits(scenes, [(1.0, obj)])
    check_fits(scenes[:1], [(2.0, scale_object(obj, 2.0))])


@pytest.mark.parametrize("argv, message", [
    (["--scales", "1,x"], "--scales '1,x': expected comma-separated numbers"),
    (["--scales", "0,1"], "--scales '0,1': need at least one positive factor"),
    (["--grid", "5"], "--grid '5': expected COLUMNSxROWS"),
    (["--label", "only_one"], "--label given 1 times for 2 --params"),
    ([], "a.params: weights file does not exist"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, files, capsys):
    assert elephant.main(["--params", "a.params", "--params", "b.params", "--no-progress"] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_usage_errors(files, capsys):
    with pytest.raises(SystemExit) as exc:
        elephant.main(["--params", "a.params", "--mask", files["mask"]])
    assert exc.value.code == 2 and "--mask needs --object" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        elephant.main(["--params", "a.params", "--occlusion-limit", "1.5"])
    assert "--occlusion-limit 1.5: must be in [0, 1]" in capsys.readouterr().err


# ---- the pipeline on fake detectors ----

class FakeModel:
    """Finds magenta pixels as class 1 (the pasted object) and always reports the scene's own objects,
    except ``forget`` of them in frames holding magenta."""

    classes = ("thing", "magenta")
    name = "fake"
    symbol_path = None

    def __init__(self, scene_boxes, forget=0):
        self.scene_boxes, self.forget = np.asarray(scene_boxes, np.float32), forget
        self.params_path = "fake%d.params" % forget

    def detect(self, images):
        out = []
        for im in images:
            magenta = (im == MAGENTA).all(axis=2)
            boxes = self.scene_boxes
            ids, scores = np.zeros(len(boxes), int), np.full(len(boxes), 0.9, np.float32)
            if magenta.any():
                ys, xs = np.nonzero(magenta)
                boxes = np.vstack([boxes[self.forget:], [[xs.min(), ys.min(), xs.max(), ys.max()]]])
                ids, scores = np.append(ids[self.forget:], 1), np.append(scores[self.forget:], 0.8)
            out.append(Detections(ids, scores, boxes.astype(np.float32)))
        return out


def test_run_elephant_counts_on_fake_detectors(tmp_path):
    scene = Scene(np.full((60, 100, 3), 40, np.uint8), "grey")
    boxes = [[0, 0, 30, 20], [60, 30, 95, 55]]
    models = [FakeModel(boxes), FakeModel(boxes, forget=1)]
    result = elephant.run_elephant(models, ["sharp", "forgetful"], l_object(), [scene, scene], [1.0, 2.0], (3, 2),
                                   object_class="magenta", sheet_frames=4, picture_side=64)
    sharp, forgetful = (m["summary"] for m in result["models"])
    assert sharp["frames"] == forgetful["frames"] == 24
    assert sharp["recall_any"] == sharp["recall_class"] == 1.0 and sharp["mean_object_score"] == pytest.approx(0.8)
    assert sharp["disappeared"] == 0
    # the first scene object vanishes from every frame where it is not covered by more than half
    visible = sum(o["outcomes"]["forgetful"]["scene_objects"] for o in result["frames"])
    assert forgetful["scene_objects"] == visible == 48 - forgetful["occluded"]
    first_covered = sum(1 for f in result["frames"] if f["outcomes"]["forgetful"]["occluded"])
    assert forgetful["disappeared"] == 24 - first_covered
    assert [m["clean_scene_objects"] for m in result["models"]] == [[2, 2], [2, 2]]
    assert len(result["sheet"][0]) == 4 and len(result["gif"][1]) == 6  # scene 0, scale 1: 3x2 positions
    paths = elephant.write_outputs(result, str(tmp_path))
    table = open(paths["table"]).read()
    assert "| sharp | 24 | 100.00 | 100.00 | 48 | 0 | 0.00 | 0 | 0.800 |" in table
    assert Image.open(paths["gif"]).n_frames == 6
    with pytest.raises(ValueError, match="--object-class cat: not a class of model sharp"):
        elephant.run_elephant(models, ["sharp", "forgetful"], l_object(), [scene], [1.0], (1, 1), object_class="cat")


# ---- end to end on tiny checkpoints ----

@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    paths = []
    for seed in (1, 2):
        run = tmp_path_factory.mktemp("run%d" % seed)
        mx.random.seed(seed)
        net = get_model("yolo3_tiny_shapes", classes=SHAPES, pretrained_base=False)
        net.initialize(mx.init.Xavier(magnitude=2.0))
        net(mx.nd.zeros((1, 3, 96, 96)))
        save_checkpoint(str(run), "best", net, None, {"epoch": 1, "args": {
            "network": "tiny", "dataset": "shapes", "tiny_width": 0.25, "tiny_head_width": 0.125, "data_shape": 96,
            "epochs": 1}})
        paths.append(str(run / "best.params"))
    return paths


def test_end_to_end_user_files(tiny_runs, files, tmp_path, capsys):
    out = str(tmp_path / "out")
    code = elephant.main(["--params", tiny_runs[0], "--params", tiny_runs[1], "--label", "baseline", "--label",
                          "mixup", "--object", files["object"], "--mask", files["mask"], "--scenes", files["noise"],
                          files["scene"], "--scales", "1,2", "--grid", "2x2", "--thresh", "0.2", "--out", out,
                          "--no-progress", "--sheet-frames", "3"])
    assert code == 0, capsys.readouterr().err
    doc = json.load(open(os.path.join(out, "elephant.json")))
    assert doc["settings"]["frames"] == 16 and doc["settings"]["object_class"] is None
    assert [m["label"] for m in doc["models"]] == ["baseline", "mixup"]
    for m in doc["models"]:
        frames = [f["outcomes"][m["label"]] for f in doc["frames"]]
        assert m["summary"]["found_any"] == sum(o["found_any"] for o in frames)
        assert m["summary"]["disappeared"] == sum(o["disappeared"] for o in frames)
        assert m["summary"]["recall_class"] is None
    noise = cv2.imread(files["noise"])[:, :, ::-1]
    for m, params in zip(doc["models"], tiny_runs):  # scene objects: the model's own detections >= 0.2
        assert m["clean_scene_objects"][0] == int((load_run_model(params).detect([noise])[0].scores >= 0.2).sum())
    assert doc["settings"]["object"] == files["object"]
    assert doc["frames"][3]["object_box"] == [60, 52, 79, 63]  # 20x12 at scale 1, bottom right of the 80x64 scene
    assert doc["frames"][5]["object_box"] == [40, 0, 79, 23]  # 40x24 at scale 2, top right
    table = open(os.path.join(out, "elephant.md")).read()
    assert "| baseline | 16 |" in table and "| mixup | 16 |" in table and "recall as" not in table
    sheet = cv2.imread(os.path.join(out, "contact_sheet.jpg"))
    assert sheet.shape[0] > 2 * 256 and sheet.shape[1] > 3 * 256  # two model rows, three frames
    assert Image.open(os.path.join(out, "elephant.gif")).n_frames == 4
    assert "baseline" in capsys.readouterr().out


def test_end_to_end_embedded_default(tiny_runs, tmp_path, capsys):
    out = str(tmp_path / "default")
    code = elephant.main(["--params", tiny_runs[0], "--params", tiny_runs[1], "--num-scenes", "1", "--scales", "1",
                          "--grid", "2x1", "--out", out, "--no-progress", "--no-gif"])
    assert code == 0, capsys.readouterr().err
    doc = json.load(open(os.path.join(out, "elephant.json")))
    assert doc["settings"]["object_class"] == "circle" and doc["settings"]["frames"] == 2
    assert doc["settings"]["object"].startswith("<shapes val seed=0") and len(doc["settings"]["scenes"]) == 1
    assert all(m["object_class_id"] == 0 for m in doc["models"])
    assert "recall as circle (%)" in open(os.path.join(out, "elephant.md")).read()
    assert not os.path.exists(os.path.join(out, "elephant.gif"))
    assert os.path.exists(os.path.join(out, "contact_sheet.jpg"))
