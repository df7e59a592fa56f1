"""EfficientViT models for images and video, their registry, inflation and checkpoints."""
# importing .efficientvit registers the variants (evitvid.models.registry)
from .efficientvit import (
    EfficientVit,
    EfficientVit3d,
    EfficientVitFrameAvg,
    VideoLogits,
)
from .action import ActionScores, action_scores
from .checkpoint import CheckpointError, convert_mit_state_dict, load_pretrained, read_state_dict
from .inflate import InflationError, inflate_state_dict, inflate_weight
from .registry import create_model, get_model_entry, list_models

__all__ = [
    "EfficientVit", "EfficientVit3d", "EfficientVitFrameAvg", "VideoLogits",
    "create_model", "get_model_entry", "list_models",
    "ActionScores", "action_scores",
    "CheckpointError", "convert_mit_state_dict", "load_pretrained", "read_state_dict",
    "InflationError", "inflate_state_dict", "inflate_weight",
]
