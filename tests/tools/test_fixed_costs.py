"""tools/fixed_costs.py: where an `optimize` run's time goes outside its epochs."""

import study.run.setup as run_setup
from catdog.fused import FusedCNN
from catdog.fused.choose import FuseChoice
from catdog.fused.measure import random_images, training_rate


def test_fuse_autos_measuring_is_start_up_and_a_fused_pair_trains_grouped(
    tool, tiny_dataset, in_tmp, monkeypatch
):
    def choose_width(device, image_size, batch_size, precision, **options):
        training_rate(random_images(device, image_size, 8), 2, 4, precision)  # two epochs
        return FuseChoice(2, "measured K=2 (a stand-in for a GPU)")

    layouts = []
    build = FusedCNN.from_members.__func__

    def from_members(cls, members, image_size, **options):
        fused = build(cls, members, image_size, **options)
        layouts.append([conv.split for conv in fused.features[::4]])
        return fused

    monkeypatch.setattr(run_setup, "choose_width", choose_width)
    monkeypatch.setattr(FusedCNN, "from_members", classmethod(from_members))
    options = ["--data", tiny_dataset, "--device", "cpu", "--precision", "fp32"]
    options += ["--trials", "2", "--max-epochs", "1", "--no-seed-configs", "--fuse", "auto"]
    options += ["--storage", "sqlite:///costs.db", "--artifact-dir", "art"]
    report = tool("fixed_costs").measure(
        [str(o) for o in options], background_thread=True, grouped=True
    )
    assert report["exit_code"] == 0
    assert report["trial_states"] == {"COMPLETE": 2}
    # The study's one fused epoch; the measuring's two epochs are start-up.
    assert report["epochs"]["count"] == 1
    measuring = report["start_up"]["--fuse auto measuring_s"]
    assert 0 < measuring < report["start_up"]["to_first_epoch_s"]
    # The GPU's code path on the CPU: a fused pair, every convolution grouped.
    assert layouts and all(layout == [False] * 6 for layout in layouts)
    assert len(layouts) == 2  # the measuring's network and the study's
