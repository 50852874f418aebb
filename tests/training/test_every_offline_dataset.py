"""``evaluate`` and ``export`` on runs of every registered offline dataset, through the dataset registry.

The shapes (segmentation) run is tests/training/test_segmentation_runs.py's, exported and evaluated there."""
import pytest

from keras_resnets.data.registry import DATASETS

pytestmark = pytest.mark.tf_only

SMALL = {
    "digits": dict(model="cifar_resnet20", model_kwargs={"depth": 8}, image_size=(8, 8)),
    "textured_digits": dict(model="cifar_resnet20", model_kwargs={"depth": 8}, image_size=(8, 8)),
}
ELSEWHERE = {"shapes"}  # test_segmentation_runs.py


def test_every_offline_dataset_is_covered():
    assert set(SMALL) | ELSEWHERE == {name for name, entry in DATASETS.items() if entry.offline and name != "folder"}


@pytest.mark.parametrize("dataset", sorted(SMALL))
def test_evaluate_and_export_a_run(dataset, tmp_path):
    from keras_resnets import train
    from keras_resnets.export import export_model
    from keras_resnets.runs import RunConfig
    from keras_resnets.tasks import get_task
    from keras_resnets.training import evaluate

    options = dict(SMALL[dataset])
    result = train(options.pop("model"), dataset, epochs=1, runs_dir=str(tmp_path), run_name="run", verbose=0,
                   **options)
    run = str(tmp_path / "run")
    task = get_task(RunConfig.load(run).task)
    scores = evaluate.evaluate_run(run, ["centre_crop"], limit=8)["centre_crop"]
    assert scores["images"] == 8 and 0.0 <= scores["top1"] <= 1.0
    report = export_model(run, quantize="none", calibration_samples=4, eval_samples=8, benchmark_runs=1).report
    assert report["task"] == task.name and report["accuracy"]["samples"] == 8
    assert all(check["passed"] for check in report["checks"] if check["required"]), report["checks"]
    assert result.metrics["status"] == "completed"


@pytest.mark.parametrize("dataset", sorted(SMALL) + sorted(ELSEWHERE))
def test_every_offline_dataset_implements_the_pipeline_contract(dataset):
    from keras_resnets.data import registry
    from keras_resnets.data.contract import DatasetPipelines

    data = registry.load(dataset, SMALL.get(dataset, {}).get("dataset_kwargs"), batch_size=8, image_size=(16, 16))
    assert isinstance(data, DatasetPipelines)
    images, labels = next(iter(data.train(1)))
    assert tuple(images.shape[1:]) == tuple(data.info.image_shape) and len(labels) == 8
