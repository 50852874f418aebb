"""Each task's constant-prediction baseline, and the one line a run that has not learned prints."""
import numpy as np

from keras_resnets.tasks import get_task
from keras_resnets.training.results import not_learned_note


def test_classification_baseline_is_the_most_frequent_class_share():
    task = get_task("classification")
    counts = task.label_counts(np.array([0, 1, 1, 2, 1, 3, 1, 0]), classes=5)
    assert counts.tolist() == [2, 4, 1, 1, 0]
    assert task.constant_baseline(counts) == 0.5


def test_segmentation_baseline_is_the_mean_iou_of_one_class_everywhere():
    """Predicting class 0 for every pixel: IoU 0 = its pixel share, 0 for the other classes present;
    the ignore label (255) counts for nothing, as in the loss and the metrics. The figure equals the
    task's own numpy mean IoU of that constant prediction."""
    task = get_task("segmentation")
    masks = np.array([[[0, 0, 0, 1], [0, 0, 2, 255]]])
    counts = task.label_counts(masks, classes=4)
    assert counts.tolist() == [5, 1, 1, 0]
    constant = np.zeros(masks.shape + (4,), np.float32)
    constant[..., 0] = 1.0
    scored = task.score(constant, masks)["miou"] / 100
    assert abs(task.constant_baseline(counts) - 5 / 7 / 3) < 1e-9
    assert abs(task.constant_baseline(counts) - scored) < 1e-9


def test_a_model_at_its_baseline_gets_one_line_and_a_learned_one_none():
    metrics = {"test_accuracy": 0.105, "test_accuracy_constant_prediction": 0.1}
    note = not_learned_note(metrics, "classification")
    assert note.startswith("note: test accuracy 0.1050 is no better than predicting the most frequent class "
                           "for every image (0.1000)") and "\n" not in note
    assert not_learned_note({**metrics, "test_accuracy": 0.5}, "classification") is None
    assert not_learned_note({"test_accuracy": 0.1}, "classification") is None  # older metrics.json: no baseline
