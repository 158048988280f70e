"""Every bad-input case of docs/datasets.md: its policy (note, fix, drop or error) and its message."""
import os
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from gluon_bof.data.base import image_header, note_image_mode, read_image
from gluon_bof.data.validation import RULES, DatasetError, DatasetWarning, ProblemLog
from gluon_bof.data.voc import VOCDetection


def write_voc(root, items, split="trainval"):
    """``items``: {id: (xml body inside <annotation>, image array or None)} under root/VOC2007."""
    voc = os.path.join(str(root), "VOC2007")
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(voc, sub), exist_ok=True)
    for img_id, (body, img) in items.items():
        with open(os.path.join(voc, "Annotations", img_id + ".xml"), "w") as f:
            f.write("<annotation>%s</annotation>" % body)
        if img is not None:
            cv2.imwrite(os.path.join(voc, "JPEGImages", img_id + ".jpg"), img)
    with open(os.path.join(voc, "ImageSets", "Main", split + ".txt"), "w") as f:
        f.write("".join(i + "\n" for i in items))
    return voc


def size(w, h):
    return "<size><width>%d</width><height>%d</height><depth>3</depth></size>" % (w, h)


def obj(name, box, difficult="0"):
    diff = "" if difficult is None else "<difficult>%s</difficult>" % difficult
    coords = "".join("<%s>%s</%s>" % (t, v, t) for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return "<object><name>%s</name>%s<bndbox>%s</bndbox></object>" % (name, diff, coords)


IMG = np.zeros((40, 50, 3), np.uint8)


def load(root, **kw):
    return VOCDetection(str(root), splits=((2007, "trainval"),), **kw)


def only_warning(record, rule):
    msgs = [str(w.message) for w in record if issubclass(w.category, DatasetWarning)]
    assert len(msgs) == 1, msgs
    assert "[%s:" % rule in msgs[0]
    return msgs[0]


# ---- boxes -----------------------------------------------------------------------------------------

def test_box_partly_outside_is_clipped_with_one_counted_warning(tmp_path):
    write_voc(tmp_path, {"a": (size(50, 40) + obj("dog", (0, -3, 60, 20)) + obj("cat", (5, 5, 51, 41)), IMG),
                         "b": (size(50, 40) + obj("dog", (1, 1, 10, 10)), IMG)})
    with pytest.warns(DatasetWarning) as record:
        ds = load(tmp_path)
    msg = only_warning(record, "box_clipped")
    assert "fixed 2 time(s) in 1 file(s)" in msg and "a.xml" in msg
    np.testing.assert_array_equal(ds.label(0)[:, :4], [[0, 0, 49, 19], [4, 4, 49, 39]])


def test_degenerate_and_outside_boxes_are_dropped_with_one_counted_warning(tmp_path):
    write_voc(tmp_path, {
        "a": (size(50, 40) + obj("dog", (10, 5, 10, 20)) + obj("dog", (30, 5, 20, 20)) + obj("cat", (2, 2, 9, 9)), IMG),
        "b": (size(50, 40) + obj("dog", (70, 50, 90, 60)), IMG),  # wholly outside the image
    })
    with pytest.warns(DatasetWarning) as record:
        ds = load(tmp_path)
    assert "dropped 3 time(s) in 2 file(s)" in only_warning(record, "box_degenerate")
    np.testing.assert_array_equal(ds.label(0), [[1, 1, 8, 8, VOCDetection.CLASSES.index("cat"), 0]])
    assert ds.label(1).shape == (0, 6)


def test_unknown_class_names_are_dropped_and_counted(tmp_path):
    write_voc(tmp_path, {"a": (size(50, 40) + obj("dgo", (1, 1, 9, 9)) + obj("dog", (1, 1, 9, 9)), IMG),
                         "b": (size(50, 40) + obj("kat", (1, 1, 9, 9)), IMG)})
    with pytest.warns(DatasetWarning) as record:
        ds = load(tmp_path)
    msg = only_warning(record, "unknown_class")
    assert "dropped 2 time(s) in 2 file(s)" in msg and "'dgo'" in msg
    assert len(ds.label(0)) == 1 and ds.label(1).shape == (0, 6)


# ---- difficult ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("difficult, expected, rule", [(None, 0, "difficult_missing"), ("", 0, "difficult_missing"),
                                                       ("yes", 0, "difficult_invalid"), ("1", 1, None)])
def test_difficult_missing_or_invalid_means_0_silently(tmp_path, difficult, expected, rule):
    write_voc(tmp_path, {"a": (size(50, 40) + obj("dog", (1, 1, 9, 9), difficult), IMG)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        ds = load(tmp_path)
    assert ds.label(0)[0, 5] == expected
    assert ds.problems.count(rule) == (1 if rule else 0)


# ---- image size ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size_xml", ["", "<size><width>0</width><height>0</height></size>",
                                      "<size><width>?</width></size>"])
def test_missing_size_is_read_from_the_image_header(tmp_path, size_xml):
    write_voc(tmp_path, {"a": (size_xml + obj("dog", (1, 1, 60, 60)), IMG)})
    with pytest.warns(DatasetWarning, match="box_clipped"):
        ds = load(tmp_path)
    assert ds.problems.count("size_missing") == 1
    assert ds.im_sizes == [(50, 40)]
    np.testing.assert_array_equal(ds.label(0)[0, :4], [0, 0, 49, 39])  # clipped to the real size
    assert ds[0][0].shape == (40, 50, 3)


def test_wrong_size_is_an_error_naming_the_file_when_read(tmp_path):
    write_voc(tmp_path, {"a": (size(64, 48) + obj("dog", (1, 1, 9, 9)), IMG)})
    ds = load(tmp_path)
    with pytest.raises(DatasetError, match=r"a\.jpg \[size_mismatch\].*width=64 height=48.*width=50 height=40") as e:
        ds[0]
    assert e.value.rule == "size_mismatch" and e.value.file.endswith("a.jpg")


# ---- empty images, malformed annotations ----------------------------------------------------------------

def test_empty_image_label_shape(tmp_path):
    write_voc(tmp_path, {"a": (size(50, 40), IMG)})
    label = load(tmp_path)[0][1]
    assert label.shape == (0, 6) and label.dtype == np.float32


def test_all_annotation_errors_are_listed_in_one_error(tmp_path):
    write_voc(tmp_path, {
        "a": (size(50, 40) + "<object><name>dog</name></object>", IMG),          # no bndbox
        "b": (size(50, 40) + obj("dog", (1, "x", 9, 9)), IMG),                   # non-numeric
        "c": (size(50, 40) + "<object><difficult>0</difficult></object>", IMG),  # no name
        "ok": (size(50, 40) + obj("dog", (1, 1, 9, 9)), IMG),
    })
    voc = os.path.join(str(tmp_path), "VOC2007")
    with open(os.path.join(voc, "Annotations", "d.xml"), "w") as f:
        f.write("<annotation><size>")  # broken XML
    with open(os.path.join(voc, "ImageSets", "Main", "trainval.txt"), "a") as f:
        f.write("d\ne\n")  # e has no annotation at all
    with pytest.raises(DatasetError) as err:
        load(tmp_path)
    msg = str(err.value)
    assert "7 error(s)" in msg  # 4 malformed, 1 annotation missing, 2 images missing
    for expected in (r"a.xml [annotation_malformed", "object 0 'dog'", "b.xml [annotation_malformed",
                     "object 0 has no <name>", "d.xml [annotation_malformed", "e.xml [annotation_missing",
                     "d.jpg [image_missing", "e.jpg [image_missing"):
        assert expected in msg
    assert not load(tmp_path, strict=False).problems.usable


def test_missing_image_is_an_error_at_construction(tmp_path):
    write_voc(tmp_path, {"a": (size(50, 40) + obj("dog", (1, 1, 9, 9)), None)})
    with pytest.raises(DatasetError, match=r"a\.jpg \[image_missing"):
        load(tmp_path)


def test_lazy_loading_raises_on_access(tmp_path):
    write_voc(tmp_path, {"a": (size(50, 40) + obj("dog", (1, 1, 9, 9)), IMG), "b": ("<object>", IMG)})
    ds = load(tmp_path, preload_label=False)
    assert ds.label(0).shape == (1, 6)
    with pytest.raises(DatasetError, match=r"b\.xml \[annotation_malformed"):
        ds[1]


# ---- image files ------------------------------------------------------------------------------------------

def gradient(h=24, w=32):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 7, y * 9, (x + y) * 3], axis=2).astype(np.uint8)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.jpg \[image_missing\]"):
        read_image(str(tmp_path / "nope.jpg"))
    (tmp_path / "text.jpg").write_bytes(b"this is not an image")
    with pytest.raises(DatasetError, match=r"text\.jpg \[image_unreadable\]"):
        read_image(str(tmp_path / "text.jpg"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.png \[image_unreadable\]"):
        read_image(str(tmp_path / "empty.png"))


@pytest.mark.parametrize("ext, cut", [(".jpg", 2), (".jpg", 300), (".png", 5), (".png", 200)])
def test_truncated_files_are_errors(tmp_path, ext, cut):
    rng = np.random.default_rng(0)
    path = str(tmp_path / ("img" + ext))
    cv2.imwrite(path, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = open(path, "rb").read()
    read_image(path)  # the complete file reads
    open(path, "wb").write(data[:-cut])
    with pytest.raises(DatasetError, match=r"img%s \[image_(truncated|unreadable)\]" % ext.replace(".", r"\.")):
        read_image(path)


def test_truncated_jpeg_with_exif_thumbnail_is_detected(tmp_path):
    """The EXIF thumbnail has an end-of-image marker of its own: it must not hide the truncation."""
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    thumb_path = str(tmp_path / "thumb.jpg")
    Image.fromarray(gradient()).save(thumb_path)
    exif = im.getexif()
    exif[0x0112] = 1
    path = str(tmp_path / "img.jpg")
    im.save(path, exif=exif.tobytes() + open(thumb_path, "rb").read())
    data = open(path, "rb").read()
    read_image(path)
    open(path, "wb").write(data[:-len(data) // 3])
    with pytest.raises(DatasetError, match=r"image_(truncated|unreadable)"):
        read_image(path)


def test_grayscale_png_becomes_rgb(tmp_path):
    gray = gradient()[:, :, 0]
    path = str(tmp_path / "g.png")
    cv2.imwrite(path, gray)
    img = read_image(path)
    assert img.shape == (24, 32, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], gray)
    log = ProblemLog()
    note_image_mode(path, *image_header(path)[2:], log)
    assert log.count("image_grayscale") == 1


def test_16bit_grayscale_png_becomes_8bit_rgb(tmp_path):
    path = str(tmp_path / "g16.png")
    cv2.imwrite(path, (gradient()[:, :, 0].astype(np.uint16) * 257))
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (24, 32, 3)
    np.testing.assert_array_equal(img[:, :, 1], gradient()[:, :, 0])


def test_rgba_png_drops_alpha_and_keeps_rgb_order(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 100, 50, 7  # R, G, B, A
    path = str(tmp_path / "a.png")
    Image.fromarray(rgba, "RGBA").save(path)
    img = read_image(path)
    assert img.shape == (4, 6, 3)
    np.testing.assert_array_equal(img[0, 0], [200, 100, 50])
    assert image_header(path)[2] == "RGBA"


def exif_rotated_jpeg(path, orientation=6):
    """A 20x40 (h x w) JPEG whose EXIF says 'rotate 90 degrees clockwise to display'."""
    raw = np.zeros((20, 40, 3), np.uint8)
    raw[:, :10] = (255, 0, 0)  # red band on the left of the stored pixels
    im = Image.fromarray(raw)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes(), quality=95)


def test_exif_rotated_jpeg_is_read_upright(tmp_path):
    path = str(tmp_path / "r.jpg")
    exif_rotated_jpeg(path)
    img = read_image(path)
    assert img.shape == (40, 20, 3)  # rotated 90 degrees clockwise: the left band is now on top
    assert img[2, 10, 0] > 200 and img[2, 10, 2] < 60 and img[-3, 10, 0] < 60
    assert image_header(path) == (20, 40, "RGB", 6)


def test_exif_rotation_is_ignored_when_the_annotation_size_is_the_unrotated_one(tmp_path):
    path = str(tmp_path / "r.jpg")
    exif_rotated_jpeg(path)
    log = ProblemLog()
    img = read_image(path, expected_size=(40, 20), log=log)
    assert img.shape == (20, 40, 3) and img[10, 2, 0] > 200
    assert log.count("exif_ignored") == 1
    assert read_image(path, expected_size=(20, 40)).shape == (40, 20, 3)
    with pytest.raises(DatasetError, match="size_mismatch"):
        read_image(path, expected_size=(30, 30))


def test_every_rule_has_a_known_action_and_is_documented():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "datasets.md")).read()
    for rule, (action, text) in RULES.items():
        assert action in ("note", "fix", "drop", "error")
        assert "`%s`" % rule in doc, rule
