"""evitvid: EfficientViT for video action recognition (frame averaging and I3D-inflated 3D)."""
from .models import create_model, inflate_state_dict, list_models, load_pretrained

__version__ = "0.1.0"
__all__ = ["create_model", "inflate_state_dict", "list_models", "load_pretrained", "__version__"]
