"""Horizontally fused training: K trials trained at once as one network (HFTA)."""

from catdog.fused.model import FusedCNN
from catdog.fused.trainer import FusedTrainer, MemberEpoch

__all__ = ["FusedCNN", "FusedTrainer", "MemberEpoch"]
