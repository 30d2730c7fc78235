"""A stage's process imports what its work uses: no YOLO when BlazePose filters, no transformers without an HF backbone."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("ultralytics", "transformers", "mediapipe", "pytorchvideo", "efficientnet_lite_pytorch", "dvc")
RUN = """import json, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))"""


def imported(args: list[str], tmp_path: Path) -> list[str]:
    """The heavy packages a whole stage process imported, run in this process (runtime.warm_seconds 0)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["runtime"]["warm_seconds"], p["weights"]["pretrained"] = 0, False  # random weights: no download
    p["persons"]["short_side"] = None  # the photographs have no source video to decode
    p["features"]["crop"] = "none"  # nor a persons parquet to cut them by
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    out = subprocess.run([sys.executable, "-c", RUN.format(heavy=HEAVY), *args, "--params", str(tmp_path / "params.yaml")],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("stage", "args", "expected"), [
    ("persons", ["{frames}", "{tmp}/p.parquet"], ["mediapipe"]),
    ("features", ["efficientnet_lite0", "{frames}", "{tmp}/f.zarr", "--family", "efficientnet"],
     ["efficientnet_lite_pytorch"]),
    ("features", ["x3d_xs", "{frames}", "{tmp}/x.zarr", "--family", "pytorchvideo"], ["pytorchvideo"]),
])
def test_a_stage_imports_its_own_model_library_alone(stage, args, expected, photo_frames, tmp_path):
    args = [a.format(frames=photo_frames, tmp=tmp_path) for a in args]
    assert imported([f"stages.{stage}", *args], tmp_path) == expected


ONE_STAGE = """import json, sys
sys.argv = ["boulderseg", *sys.argv[1:]]
from pipeline.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("pipeline.views", "pipeline.review", "pipeline.cluster",
                                                                "pipeline.learning", "pipeline.annotations.commands")))))"""


def test_boulderseg_stage_builds_that_command_alone_with_the_whole_trees_help():
    out = subprocess.run([sys.executable, "-c", ONE_STAGE, "stage", "frames", "--help"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
    from pipeline.cli import STAGES
    whole = "import sys; sys.argv[0] = 'boulderseg'; from pipeline.cli import app; app()"
    for stage in STAGES:
        one = subprocess.run([sys.executable, "-c", ONE_STAGE, "stage", stage, "--help"], cwd=REPO, capture_output=True, text=True)
        tree = subprocess.run([sys.executable, "-c", whole, "stage", stage, "--help"], cwd=REPO, capture_output=True, text=True)
        assert one.stdout.rsplit("[", 1)[0] == tree.stdout and "Usage: boulderseg stage " + stage in tree.stdout
    one = subprocess.run([sys.executable, "-c", ONE_STAGE, "stage", "frames", "--nope"], cwd=REPO, capture_output=True, text=True)
    tree = subprocess.run([sys.executable, "-c", whole, "stage", "frames", "--nope"], cwd=REPO, capture_output=True, text=True)
    assert one.stderr == tree.stderr and "No such option" in tree.stderr and tree.returncode == 2
