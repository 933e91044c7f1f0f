import math

from catdog.classes import ClassScores, class_labels, imbalance, is_imbalanced


def test_the_reports_folders_keep_their_labels_and_any_others_are_their_own():
    assert class_labels(("cats", "dogs")) == ("cat", "dog")
    assert class_labels(("birds", "cats", "dogs")) == ("birds", "cats", "dogs")
    assert class_labels(("defect", "good")) == ("defect", "good")


def test_balanced_accuracy_weighs_every_class_the_same():
    # 90 cats, 10 dogs: a model that says "cat" for every image.
    always_cat = ClassScores(((90, 0), (10, 0)))
    assert always_cat.counts == (90, 10)
    assert always_cat.accuracy == 0.9
    assert always_cat.per_class_accuracy == (1.0, 0.0)
    assert always_cat.balanced_accuracy == 0.5
    three = ClassScores(((8, 1, 1), (0, 4, 0), (2, 0, 2)))
    assert three.accuracy == 14 / 18
    assert math.isclose(three.balanced_accuracy, (0.8 + 1.0 + 0.5) / 3)


def test_classes_count_as_imbalanced_beyond_one_and_a_half_times():
    assert imbalance([300, 200]) == 1.5 and not is_imbalanced([300, 200])
    assert is_imbalanced([301, 200]) and is_imbalanced([5, 0])
