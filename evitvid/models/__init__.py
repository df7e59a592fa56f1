"""EfficientViT models for images and video, their registry, inflation and checkpoints."""
# importing .efficientvit registers the variants (evitvid.models.registry)
from .efficientvit import (
    ActionLogits,
    EfficientVit,
    EfficientVit3d,
    EfficientVitFrameAvg,
    EfficientVitTsm,
    VideoLogits,
)
from .action import ActionClasses, ActionScores, action_scores, marginal_log_probs
from .checkpoint import (CheckpointError, convert_mit_state_dict, convert_paper_state_dict, load_pretrained,
                         read_state_dict)
from .inflate import InflationError, inflate_state_dict, inflate_weight
from .registry import create_model, get_model_entry, list_models

__all__ = [
    "EfficientVit", "EfficientVit3d", "EfficientVitFrameAvg", "EfficientVitTsm", "VideoLogits", "ActionLogits",
    "create_model", "get_model_entry", "list_models",
    "ActionScores", "action_scores", "ActionClasses", "marginal_log_probs",
    "CheckpointError", "convert_mit_state_dict", "convert_paper_state_dict", "load_pretrained", "read_state_dict",
    "InflationError", "inflate_state_dict", "inflate_weight",
]
