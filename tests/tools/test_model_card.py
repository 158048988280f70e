"""The model card's training command is the run's own command line, which runs as it is."""
from gluon_bof.tools.model_card import training_command


def test_training_command_is_the_recorded_command_line():
    args = {"argv": ["--network", "tiny", "--save-dir", "runs/my demo"], "network": "tiny", "max_objects": 6}
    assert training_command("yolo3", args) == "python train_yolo3.py --network tiny --save-dir 'runs/my demo'"


def test_without_a_recorded_command_line_measured_values_are_not_flags():
    command = training_command("faster_rcnn", {"network": "mobilenet0.25", "mixup": True, "max_objects": 300,
                                               "resume": ""})
    assert command == "python train_faster_rcnn.py --mixup --network mobilenet0.25"
