import pytest
import torch

import catdog.train as train_module
from catdog.augment import to_float
from catdog.config import TrainConfig
from catdog.train import batch_order, evaluate, train

CPU = torch.device("cpu")


def test_no_shuffle_means_class_sorted_file_order(splits):
    train_data, _ = splits
    order = batch_order(len(train_data), False, torch.Generator())
    labels = train_data.labels[order].tolist()
    assert labels == sorted(labels) and labels[0] == 0 and labels[-1] == 1
    shuffled = train_data.labels[batch_order(len(train_data), True, torch.Generator())].tolist()
    assert shuffled != sorted(shuffled) and sorted(shuffled) == labels


def test_training_returns_one_history_entry_per_epoch(splits):
    train_data, test_data = splits
    seen = []
    state = train(
        TrainConfig(optimizer="adam", lr=1e-3, epochs=2, batch_size=16),
        train_data,
        test_data,
        on_epoch=lambda m, s: seen.append(m.epoch),
    )
    assert seen == [1, 2]
    assert [m.epoch for m in state.history] == [1, 2]
    last = state.history[-1]
    assert 0.0 <= last.train_accuracy <= 1.0 and 0.0 <= last.eval_accuracy <= 1.0
    assert last.eval_loss > 0 and last.seconds > 0


def test_augmentation_touches_training_batches_only(splits, monkeypatch):
    train_data, test_data = splits
    augmented = []

    def spy(images, augmentation, generator):
        augmented.append(images.shape[0])
        return to_float(images)

    monkeypatch.setattr(train_module, "augment", spy)
    state = train(TrainConfig(epochs=1, batch_size=16), train_data, test_data)
    assert sum(augmented) == len(train_data)  # every training image once, no test image
    # Evaluation sees the plain images: it is deterministic and ignores the augmentation.
    monkeypatch.setattr(train_module, "augment", lambda *a: pytest.fail("augmented at eval"))
    assert evaluate(state.model, test_data, "fp32") == evaluate(state.model, test_data, "fp32")


def test_same_seed_same_run(splits):
    train_data, test_data = splits
    config = TrainConfig(optimizer="sgd", lr=0.05, epochs=2, batch_size=16)
    first = train(config, train_data, test_data, seed=7)
    second = train(config, train_data, test_data, seed=7)
    assert [m.eval_loss for m in first.history] == [m.eval_loss for m in second.history]


def test_resuming_from_a_state_continues_the_same_run(splits):
    train_data, test_data = splits
    config = TrainConfig(optimizer="adam", lr=1e-3, epochs=3, batch_size=16)
    whole = train(config, train_data, test_data, seed=3)
    saved = {}

    def stop_after_first(metrics, state):
        if metrics.epoch == 1:
            saved.update(state.state_dict())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, train_data, test_data, seed=3, on_epoch=stop_after_first)
    resumed = train(config, train_data, test_data, seed=3, resume=saved)
    assert [m.epoch for m in resumed.history] == [1, 2, 3]
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a.eval_loss == pytest.approx(b.eval_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("batch_size", "batches"),
    [(16, [16, 16, 8]), (32, [32, 8]), (39, [39]), (256, [40])],  # 39: the lone 40th is dropped
)
def test_batch_size_sets_the_training_batches(splits, monkeypatch, batch_size, batches):
    train_data, test_data = splits
    seen = []

    def spy(images, augmentation, generator):
        seen.append(images.shape[0])
        return to_float(images)

    monkeypatch.setattr(train_module, "augment", spy)
    state = train(TrainConfig(epochs=2, batch_size=batch_size), train_data, test_data)
    assert seen == batches * 2
    assert state.schedule.last_epoch == len(seen)  # the schedule steps once per batch


def test_a_cosine_run_ends_with_the_learning_rate_near_zero(splits):
    train_data, test_data = splits
    config = TrainConfig(optimizer="sgd", lr=0.05, epochs=2, batch_size=16, lr_schedule="cosine")
    state = train(config, train_data, test_data)
    assert state.optimizer.param_groups[0]["lr"] < 0.05 * 0.01


def test_compiled_model_is_compiled_once_per_process_and_reused(splits, monkeypatch):
    train_data, test_data = splits
    graphs = []

    def counting_backend(graph_module, example_inputs):  # runs the captured graph as it is
        graphs.append(graph_module)
        return graph_module.forward

    monkeypatch.setattr(train_module, "COMPILE_BACKEND", counting_backend)
    config = TrainConfig(optimizer="adam", lr=1e-3, epochs=2, batch_size=16)
    torch._dynamo.reset()
    try:
        first = train(config, train_data, test_data, seed=5, compile=True)
        captured = len(graphs)
        assert captured > 0
        # A later trial's new model (other seed, same shapes) runs on the graphs already made.
        train(config, train_data, test_data, seed=6, compile=True)
        assert len(graphs) == captured
    finally:
        torch._dynamo.reset()
    eager = train(config, train_data, test_data, seed=5)
    for compiled_epoch, eager_epoch in zip(first.history, eager.history, strict=True):
        assert compiled_epoch.eval_loss == pytest.approx(eager_epoch.eval_loss, rel=1e-4)
    assert set(first.state_dict()["model"]) == set(eager.state_dict()["model"])  # plain keys
