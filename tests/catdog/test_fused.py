"""Fused training is separate training, faster: same losses, same weights, same states.

On CPU the fused network runs each member's convolution on its own (see catdog.fused.model), so
the comparisons here hold to the last bit on the machines tried; the tolerances only leave room
for the order in which the per-epoch loss sums add up.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from catdog.config import TrainConfig
from catdog.fused import FusedCNN, FusedTrainer
from catdog.fused.model import member_input
from catdog.model import CatDogCNN, report_order
from catdog.modelfile import load_model_file, save_model_file
from catdog.train import TrainingDiverged, train

CPU = torch.device("cpu")
BATCH = 16  # 40 training images: batches of 16, 16 and 8

# Three trials that share nothing but the batch size: optimizer, lr, momentum, weight decay,
# schedule with warm-up, label smoothing, shuffling, augmentation (one crops: bilinear) and seed.
TRIALS = (
    (TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, epochs=2), 11),
    (
        TrainConfig(
            optimizer="adam",
            lr=2e-3,
            shuffle=False,
            epochs=2,
            lr_schedule="cosine",
            warmup_epochs=1,
            label_smoothing=0.1,
        ),
        12,
    ),
    (
        TrainConfig(
            optimizer="adamw",
            lr=3e-3,
            weight_decay=0.05,
            epochs=2,
            rotation_degrees=10.0,
            min_crop_scale=0.5,
        ),
        13,
    ),
)
TRIALS = tuple((TrainConfig(**{**c.to_dict(), "batch_size": BATCH}), s) for c, s in TRIALS)


@pytest.fixture(scope="module")
def alone(splits):
    """Each of TRIALS trained on its own, as train() does."""
    return [train(config, *splits, seed=seed) for config, seed in TRIALS]


def _run(trainer: FusedTrainer) -> dict:
    """run_epoch until every slot is empty; the final state of each slot's members in order."""
    ended = {}
    while trainer.active_slots:
        for result in trainer.run_epoch():
            if result.ended:
                ended.setdefault(result.slot, []).append(result)
    return ended


def _assert_same_curves(fused_history, solo_history):
    assert [m.epoch for m in fused_history] == [m.epoch for m in solo_history]
    for fused, solo in zip(fused_history, solo_history, strict=True):
        for name in ("train_loss", "eval_loss", "train_accuracy", "eval_accuracy"):
            assert getattr(fused, name) == pytest.approx(getattr(solo, name), rel=1e-5), name


def _assert_same_state(fused_state, solo_state):
    fused, solo = fused_state.state_dict(), solo_state.state_dict()
    assert fused["model"].keys() == solo["model"].keys()
    for name, tensor in solo["model"].items():
        assert fused["model"][name].stride() == tensor.stride(), name  # channels-last as alone
        torch.testing.assert_close(fused["model"][name], tensor, rtol=1e-5, atol=1e-7)
    fused_optimizer, solo_optimizer = fused["optimizer"], solo["optimizer"]
    assert fused_optimizer["param_groups"] == solo_optimizer["param_groups"]
    torch.testing.assert_close(
        fused_optimizer["state"], solo_optimizer["state"], rtol=1e-5, atol=1e-7
    )
    assert fused["schedule"] == solo["schedule"]
    assert torch.equal(fused["generator"], solo["generator"])  # the same draws, in number too


@pytest.mark.parametrize("round_up", [False, True], ids=["as many groups", "rounded up"])
def test_three_fused_trials_train_exactly_as_three_alone(splits, alone, round_up):
    trainer = FusedTrainer(*splits, slots=3, batch_size=BATCH, round_up=round_up)
    seen = []
    for slot, (config, seed) in enumerate(TRIALS):
        trainer.start(slot, config, seed, on_epoch=lambda m, s, slot=slot: seen.append(slot))
    ended = _run(trainer)
    assert seen == [0, 1, 2, 0, 1, 2]  # each member's on_epoch, once per epoch
    assert trainer.free_slots == [0, 1, 2]
    for slot, solo in enumerate(alone):
        (result,) = ended[slot]
        assert result.error is None and result.metrics.epoch == 2
        _assert_same_curves(result.state.history, solo.history)
        _assert_same_state(result.state, solo)


def test_fused_trials_of_three_classes_train_exactly_as_alone(shape_splits):
    trials = TRIALS[:2]  # the second smooths its labels, over three classes
    alone = [train(config, *shape_splits, seed=seed) for config, seed in trials]
    trainer = FusedTrainer(*shape_splits, slots=2, batch_size=BATCH)
    for slot, (config, seed) in enumerate(trials):
        trainer.start(slot, config, seed)
    ended = _run(trainer)
    for slot, solo in enumerate(alone):
        (result,) = ended[slot]
        assert result.error is None and result.state.model.head[1].out_features == 3
        _assert_same_curves(result.state.history, solo.history)
        _assert_same_state(result.state, solo)


@pytest.mark.parametrize("round_up", [False, True], ids=["as many groups", "rounded up"])
def test_a_freed_slot_takes_the_next_trial_which_trains_as_alone(splits, alone, round_up):
    # Slot 0: a one-epoch trial, then a trial without augmentation (no random draws at all)
    # that joins at the second epoch; slot 1: a trial pruned by its callback after epoch 1;
    # slot 2: a trial that diverges. Trials 1 and 2 of TRIALS run beside them throughout.
    short = TrainConfig(optimizer="adam", lr=1e-3, epochs=1, batch_size=BATCH)
    plain = TrainConfig(
        optimizer="sgd", lr=0.02, epochs=2, batch_size=BATCH, rotation_degrees=0.0, flip=False
    )
    exploding = TrainConfig(optimizer="sgd", lr=1e35, epochs=2, batch_size=BATCH)

    def prune(metrics, state):
        raise RuntimeError("pruned")

    trainer = FusedTrainer(*splits, slots=5, batch_size=BATCH, round_up=round_up)
    trainer.start(0, short, 5)
    trainer.start(1, *TRIALS[0], on_epoch=prune)
    trainer.start(2, exploding, 6)
    trainer.start(3, *TRIALS[1])
    trainer.start(4, *TRIALS[2])
    first = {result.slot: result for result in trainer.run_epoch()}
    assert first[0].ended and first[0].error is None
    assert first[1].ended and str(first[1].error) == "pruned"
    assert first[2].ended and isinstance(first[2].error, TrainingDiverged)
    assert not first[2].state.history  # a diverged epoch is not recorded, as train() does
    assert not first[3].ended and not first[4].ended
    assert trainer.free_slots == [0, 1, 2]
    trainer.start(0, plain, 8)
    ended = _run(trainer)
    assert trainer.widths == ([5, 3, 1] if not round_up else [5, 4, 1])
    _assert_same_curves(first[0].state.history, train(short, *splits, seed=5).history)
    _assert_same_curves(first[1].state.history, alone[0].history[:1])
    _assert_same_curves(ended[0][0].state.history, train(plain, *splits, seed=8).history)
    _assert_same_state(ended[0][0].state, train(plain, *splits, seed=8))
    for slot, solo in ((3, alone[1]), (4, alone[2])):
        _assert_same_curves(ended[slot][0].state.history, solo.history)
        _assert_same_state(ended[slot][0].state, solo)


def test_a_rounded_up_layout_takes_a_few_widths_as_the_last_trials_end(splits):
    trainer = FusedTrainer(*splits, slots=8, batch_size=BATCH, round_up=True)
    for slot in range(7):  # trials of 1, 1, 2, 2, 3, 3 and 4 epochs
        config = TrainConfig(optimizer="sgd", lr=0.01, epochs=1 + slot // 2, batch_size=BATCH)
        trainer.start(slot, config, seed=slot)
    _run(trainer)
    assert trainer.widths == [8, 8, 4, 1]  # for 7, 5, 3 and 1 members (not 7, 5, 3, 1)


def test_a_member_state_is_an_ordinary_train_state(splits, alone, tmp_path):
    config, seed = TRIALS[1]
    saved = {}

    def checkpoint(metrics, state):
        torch.save(state.state_dict(), tmp_path / "resume.pt")  # as the study's resume store
        saved["model"] = save_model_file(tmp_path / "model.safetensors", state.model)
        raise KeyboardInterrupt  # stops the whole process: the run ends after epoch 1

    trainer = FusedTrainer(*splits, slots=2, batch_size=BATCH)
    trainer.start(0, *TRIALS[0])
    trainer.start(1, config, seed, on_epoch=checkpoint)
    with pytest.raises(KeyboardInterrupt):
        trainer.run_epoch()
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    # Its own tensors only, not views into the other member's: the file holds one network.
    for tensor in state["model"].values():
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    model = CatDogCNN(64)
    model.load_state_dict(state["model"])
    assert load_model_file(tmp_path / "model.safetensors").image_size == 64
    # A solo run resumes the fused member, and a fused member resumes a solo run.
    resumed = train(config, *splits, seed=seed, resume=state)
    _assert_same_curves(resumed.history, alone[1].history)
    _assert_same_state(resumed, alone[1])
    again = FusedTrainer(*splits, slots=2, batch_size=BATCH)
    # Loaded again: Optimizer.load_state_dict adopts the tensors it is given, and the solo run
    # has trained them on.
    again.start(1, config, seed, resume=torch.load(tmp_path / "resume.pt", weights_only=True))
    (result,) = _run(again)[1]
    _assert_same_curves(result.state.history, alone[1].history)
    _assert_same_state(result.state, alone[1])


def test_grouped_convolutions_compute_what_split_ones_do():
    # What runs on a GPU: one grouped convolution per block (split ones are the CPU default).
    torch.manual_seed(0)
    members = [CatDogCNN(64).to(memory_format=torch.channels_last) for _ in range(3)]
    states = [member.state_dict() for member in members]
    split = FusedCNN.from_members(states, 64)
    grouped = FusedCNN.from_members(states, 64, split_convolutions=False)
    assert split.features[0].split and not grouped.features[0].split
    # As --fuse auto may choose them: each block grouped or split, whichever is faster.
    mixed = FusedCNN.from_members(states, 64, split_convolutions=[True, False] * 3)
    assert [conv.split for conv in mixed.features[::4]] == [True, False] * 3
    pixels = torch.rand(3 * 8, 3, 64, 64)
    labels = torch.randint(0, 2, (3, 8))
    for fused in (split, grouped, mixed):
        logits = fused(member_input(pixels, 3, "fp32"))
        assert logits.shape == (3, 8, 2)
        sum(F.cross_entropy(logits[k], labels[k]) for k in range(3)).backward()
    for k, member in enumerate(members):
        alone = member(pixels[k * 8 : (k + 1) * 8].contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(split(member_input(pixels, 3, "fp32"))[k], alone)
    for other in (grouped, mixed):
        for (name, a), b in zip(split.named_parameters(), other.parameters(), strict=True):
            scale = b.grad.abs().max()
            assert (a.grad - b.grad).abs().max() <= 1e-3 * scale, name  # rounding only


def test_members_share_the_batch_size_and_a_slot_holds_one(splits):
    trainer = FusedTrainer(*splits, slots=2, batch_size=BATCH)
    with pytest.raises(ValueError, match="batch size"):
        trainer.start(0, TrainConfig(batch_size=32), 0)
    trainer.start(0, *TRIALS[0])
    with pytest.raises(ValueError, match="in use"):
        trainer.start(0, *TRIALS[1])
    assert trainer.active_slots == [0] and trainer.free_slots == [1]
    state = trainer.stop(0)
    assert not state.history and trainer.free_slots == [0, 1]
    with pytest.raises(ValueError, match="no member"):
        trainer.run_epoch()
    assert trainer.slots == 2
    done = TrainConfig(epochs=1, batch_size=BATCH, rotation_degrees=0.0, flip=False)
    finished = train(done, *splits, seed=0)
    with pytest.raises(ValueError, match="all its 1 epochs"):
        trainer.start(1, done, 0, resume=finished.state_dict())


@pytest.mark.parametrize("split", [True, False], ids=["split", "grouped"])
def test_the_fused_block_is_exactly_the_reports_order(split):
    torch.manual_seed(1)
    states = [CatDogCNN(64).to(memory_format=torch.channels_last).state_dict() for _ in range(2)]
    fused = FusedCNN.from_members(states, 64, split_convolutions=split)
    assert isinstance(fused.features[2], torch.nn.MaxPool2d)
    assert isinstance(fused.features[3], torch.nn.ReLU)
    report = copy.deepcopy(fused)
    report.features = report_order(report.features)
    assert isinstance(report.features[2], torch.nn.ReLU)
    assert report.state_dict().keys() == fused.state_dict().keys()
    pixels = torch.randn(2 * 8, 3, 64, 64) * 2
    labels = torch.randint(0, 2, (2, 8))
    for precision in ("fp32", "bf16"):
        logits = []
        for network in (fused, report):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = network(member_input(pixels, 2, precision))
            network.zero_grad()
            sum(F.cross_entropy(out[k].float(), labels[k]) for k in range(2)).backward()
            logits.append(out.detach())
        assert torch.equal(*logits), precision
        for (name, ours), theirs in zip(
            fused.named_parameters(), report.parameters(), strict=True
        ):
            assert torch.equal(ours.grad, theirs.grad), (precision, name)
        for name, buffer in report.named_buffers():  # BatchNorm statistics
            assert torch.equal(fused.get_buffer(name), buffer), (precision, name)
