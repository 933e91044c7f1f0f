import torch

from catdog.cache import read_split
from catdog.classic import classic_evaluate, classic_loader, classic_model, classic_train

CPU = torch.device("cpu")


def test_classic_pipeline_decodes_only_the_chosen_files_every_pass(tiny_dataset, tmp_path):
    split = tiny_dataset / "training_set"
    paths = read_split(split, 64, tmp_path).paths
    chosen = paths[:3] + paths[-2:]  # both classes
    loader = classic_loader(split, 64, files=chosen, batch_size=4)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 1]
    images = torch.cat([images for images, _ in batches])
    assert images.shape == (5, 3, 64, 64) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert sorted(torch.cat([labels for _, labels in batches]).tolist()) == [0, 0, 0, 1, 1]

    model = classic_model(64, CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    # The single-image last batch is left out of training (BatchNorm), not of evaluation.
    assert classic_train(model, optimizer, loader, CPU) == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert classic_evaluate(model, loader, CPU) == 5
