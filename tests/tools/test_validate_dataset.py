"""validate_dataset: one pass over every problem with counts, and exit codes 0 (usable) / 1 (not) / 2 (usage)."""
import os
import subprocess
import sys

import pytest

from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.tools.validate_dataset import main

SHAPES = "circle,rectangle,triangle,star,cross,ring"


@pytest.fixture(scope="module")
def shapes_voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    ShapesDetection(5, seed=3, min_size=96, max_size=128).write_voc(str(root), 2007, "trainval")
    return str(root)


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_clean_voc_is_usable(capsys, shapes_voc):
    code, out = run(capsys, "--dataset", "voc", "--root", shapes_voc, "--splits", "2007_trainval", "--classes", SHAPES)
    assert code == 0
    assert "5 items, 6 classes" in out and "no problems found" in out and "USABLE" in out


def test_broken_voc_reports_every_problem_with_counts(capsys, tmp_path):
    ShapesDetection(4, seed=3, min_size=96, max_size=128).write_voc(str(tmp_path), 2007, "trainval")
    voc = os.path.join(str(tmp_path), "VOC2007")
    for img_id in ("train000000", "train000001"):  # two truncated images
        path = os.path.join(voc, "JPEGImages", img_id + ".jpg")
        data = open(path, "rb").read()
        open(path, "wb").write(data[:len(data) // 2])
    open(os.path.join(voc, "Annotations", "train000002.xml"), "w").write("<annotation><object>")  # broken XML
    xml_path = os.path.join(voc, "Annotations", "train000003.xml")
    xml = open(xml_path).read()
    first_name = xml.split("<name>")[1].split("</name>")[0]
    xml = xml.replace("<name>%s</name>" % first_name, "<name>blob</name>", 1)  # unknown class
    xml = xml.replace("<size><width>", "<size><width>1", 1)  # wrong width: e.g. 100 -> 1100
    open(xml_path, "w").write(xml)
    code, out = run(capsys, "--dataset", "voc", "--root", str(tmp_path), "--splits", "2007_trainval",
                    "--classes", SHAPES)
    assert code == 1
    row = {line.split()[1]: line for line in out.splitlines() if line.split()[:1] in (["note"], ["fix"], ["drop"],
                                                                                      ["error"])}
    assert set(row) >= {"image_truncated", "annotation_malformed", "unknown_class", "size_mismatch"}
    assert " 2 in     2 file(s)" in row["image_truncated"]
    assert " 1 in     1 file(s)" in row["annotation_malformed"]
    assert " 1 in     1 file(s)" in row["unknown_class"]
    assert " 1 in     1 file(s)" in row["size_mismatch"]
    assert "class names not in `classes`: 'blob' (1)" in out
    # the 4 images hold no triangle: a class of --classes without objects is one more error
    assert "class 'triangle' of --classes has no object in the annotations" in out
    assert "NOT USABLE: 5 error(s)" in out


def test_no_images_skips_decoding(capsys, tmp_path):
    shapes = ShapesDetection(2, seed=3, min_size=96, max_size=128)
    shapes.write_voc(str(tmp_path), 2007, "trainval")
    present = sorted({shapes.classes[int(c)] for i in range(len(shapes)) for c in shapes.label(i)[:, 4]})
    path = os.path.join(str(tmp_path), "VOC2007", "JPEGImages", "train000001.jpg")
    open(path, "wb").write(b"garbage")
    argv = ["--dataset", "voc", "--root", str(tmp_path), "--splits", "2007_trainval", "--classes", ",".join(present)]
    assert run(capsys, *argv)[0] == 1
    code, out = run(capsys, *(argv + ["--no-images"]))
    assert code == 0 and "image_unreadable" not in out


def test_no_object_of_the_classes_is_not_usable(capsys, shapes_voc):
    code, out = run(capsys, "--dataset", "voc", "--root", shapes_voc, "--splits", "2007_trainval", "--no-images")
    assert code == 1 and "unknown_class" in out and "NOT USABLE: no objects of the given classes" in out


def test_missing_split_is_not_usable(capsys, shapes_voc):
    code, out = run(capsys, "--dataset", "voc", "--root", shapes_voc, "--splits", "2012_trainval")
    assert code == 1 and "split_missing" in out


def test_coco(capsys, tmp_path):
    ds = ShapesDetection(3, seed=4, min_size=96, max_size=128)
    ds.write_coco(str(tmp_path), "instances_val2017")
    argv = ["--dataset", "coco", "--root", str(tmp_path), "--splits", "instances_val2017"]
    code, out = run(capsys, *argv)
    assert code == 0 and "3 items" in out
    os.remove(os.path.join(str(tmp_path), "val2017", "train000001.jpg"))
    code, out = run(capsys, *argv)
    assert code == 1 and "image_missing" in out and " 1 in     1 file(s)" in out


def test_shapes(capsys):
    code, out = run(capsys, "--dataset", "shapes", "--num-images", "6", "--seed", "1", "--split", "val")
    assert code == 0 and "6 items, 6 classes" in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "voc"])  # no --root
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "kitti", "--root", "."])
    assert e.value.code == 2


def test_module_entry_point(shapes_voc):
    proc = subprocess.run([sys.executable, "-m", "gluon_bof.tools.validate_dataset", "--dataset", "voc", "--root",
                           shapes_voc, "--splits", "2007_trainval", "--classes", SHAPES, "--no-images"],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "USABLE" in proc.stdout and "5 items" in proc.stdout


def test_a_class_without_objects_is_an_error_with_the_closest_name(capsys, shapes_voc):
    code, out = run(capsys, "--dataset", "voc", "--root", shapes_voc, "--splits", "2007_trainval", "--classes",
                    SHAPES.replace("triangle", "triangel"))
    assert code == 1
    assert "class 'triangel' of --classes has no object in the annotations (did you mean 'triangle'?" in out
    assert "NOT USABLE" in out


def test_an_empty_split_names_its_list_file(capsys, tmp_path):
    ShapesDetection(2, seed=3, min_size=96, max_size=128).write_voc(str(tmp_path), 2007, "trainval")
    empty = os.path.join(str(tmp_path), "VOC2007", "ImageSets", "Main", "test.txt")
    open(empty, "w").write("\n")
    code, out = run(capsys, "--dataset", "voc", "--root", str(tmp_path), "--splits", "2007_test", "--classes", SHAPES)
    assert code == 1
    assert empty in out and "[split_empty]" in out and "lists no image id" in out


def _photo_folder(root, **kwargs):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    from photo_folder import write_photo_folder

    return write_photo_folder(root, **kwargs)


def test_custom_folder_of_png_photos_with_capitalised_names_is_usable(capsys, tmp_path):
    _photo_folder(str(tmp_path), splits={"train": 6, "val": 2}, mixed_extensions=True, large=(3000, 2000),
                  crowded_split="val")
    code, out = run(capsys, "--dataset", "custom", "--root", str(tmp_path), "--splits", "MyData_train,MyData_val")
    assert code == 0, out
    collected = out.split("--classes not given: ")[1].split("\n")[0]
    assert collected.startswith("%d classes collected from the annotations: --classes " % len(collected.split(",")))
    assert "Rectangle: " in out and "RECTANGLE" not in out and "9 items" in out  # 6 + 2 + the crowded one
    assert "image_alpha" in out and "image_grayscale" in out and "USABLE: 3 problem(s)" in out  # notes only: 2 RGBA, 1 gray
    # the images are PNG (and others): the VOC default, .jpg, finds none of them, --image-ext names one
    code, out = run(capsys, "--dataset", "voc", "--root", str(tmp_path), "--splits", "MyData_val", "--classes",
                    "circle,rectangle", "--no-images")
    assert code == 1 and "image_missing" in out and " 3 in     3 file(s)" in out
    code, out = run(capsys, "--dataset", "voc", "--root", str(tmp_path), "--splits", "MyData_val", "--classes",
                    "rectangle", "--image-ext", ".png")
    assert code == 0 and "rectangle: 3" in out


def test_custom_class_without_objects_is_reported(capsys, tmp_path):
    _photo_folder(str(tmp_path), splits={"train": 3}, crowded_split="train")
    code, out = run(capsys, "--dataset", "custom", "--root", str(tmp_path), "--splits", "MyData_train", "--classes",
                    "Rectangle,Unicorn")
    assert code == 1 and "class 'Unicorn' of --classes has no object in the annotations" in out
