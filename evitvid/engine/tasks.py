"""What a model learns: where a batch keeps its input and targets, the loss, the metrics.

The trainer and `evaluate` are given a task explicitly; they do not guess it from the
model's output:

- `VideoTask`: clips under "video" (B x C x T x H x W), verb and noun targets, outputs
  with `.verb` and `.noun` (`evitvid.models.VideoLogits`); loss = verb cross-entropy plus
  `noun_loss_weight` x noun cross-entropy; EK100's metrics (`evitvid.metrics.video_metrics`).
- `ActionTask`: AVION's task, for a video model built with `actions=` (one classifier over
  action classes, `evitvid.models.ActionLogits`): the target is the action class of each
  clip's (verb, noun) in the model's vocabulary, the loss cross-entropy over actions; the
  metrics are `VideoTask`'s, on the verb and noun log marginal probabilities the model gives.
- `ImageTask`: images under "image" (B x C x H x W), one target "label", plain logits;
  cross-entropy; top-1/top-5 (`classification_metrics`). Image pretraining uses it.

A task's `targets` are the class indices its loss trains on, by name; `num_classes` says how
many classes each has, which mixing (`evitvid.engine.mixup`) needs to turn them into class
probabilities. The loss takes either: cross-entropy of indices, or of probabilities (the
soft-target cross-entropy timm's `SoftTargetCrossEntropy` computes, which
`F.cross_entropy` does for a B x classes floating-point target).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..metrics import classification_metrics, video_metrics
from ..models.action import ActionClasses

__all__ = ["Task", "VideoTask", "ActionTask", "ImageTask", "VIDEO", "IMAGE"]


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Logits for the loss: fp16/bf16 (autocast) up to fp32, fp32 and fp64 kept."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class Task:
    """The interface: `input_key`, `heads(output)`, `targets(batch, device)`, `num_classes(model)`,
    `loss(output, targets, ...)`, `metrics(...)`."""

    input_key: str
    head_names: tuple[str, ...]

    def heads(self, output: Any) -> dict[str, torch.Tensor]:
        """The model's output as {head name: logits}."""
        raise NotImplementedError

    def targets(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """The class indices the loss trains on, by name, on `device`."""
        raise NotImplementedError

    def num_classes(self, model: torch.nn.Module) -> dict[str, int]:
        """The number of classes of each of `targets`, for `model`."""
        raise NotImplementedError

    def loss(self, output: Any, targets: Mapping[str, torch.Tensor], *, label_smoothing: float = 0.0
             ) -> torch.Tensor:
        """The loss of `output` against `targets` (as `targets` gives them, or mixed into class
        probabilities)."""
        raise NotImplementedError

    def metrics(self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError


@dataclass(frozen=True)
class VideoTask(Task):
    noun_loss_weight: float = 1.0
    input_key: str = "video"
    head_names: tuple[str, ...] = ("verb", "noun")

    def heads(self, output: Any) -> dict[str, torch.Tensor]:
        return {"verb": output.verb, "noun": output.noun}

    def targets(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        return {"verb": torch.as_tensor(batch["verb"], device=device),
                "noun": torch.as_tensor(batch["noun"], device=device)}

    def num_classes(self, model: torch.nn.Module) -> dict[str, int]:
        return {"verb": model.num_verbs, "noun": model.num_nouns}

    def loss(self, output: Any, targets: Mapping[str, torch.Tensor], *, label_smoothing: float = 0.0
             ) -> torch.Tensor:
        verb = F.cross_entropy(_at_least_fp32(output.verb), targets["verb"], label_smoothing=label_smoothing)
        noun = F.cross_entropy(_at_least_fp32(output.noun), targets["noun"], label_smoothing=label_smoothing)
        return verb + self.noun_loss_weight * noun

    def metrics(self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
        return video_metrics(logits["verb"], logits["noun"], targets["verb"], targets["noun"])


@dataclass(frozen=True)
class ActionTask(VideoTask):
    """`VideoTask` for a model with an action head: trains the action classifier over `actions`
    (the model's vocabulary), scores verbs and nouns from the model's marginals."""
    actions: ActionClasses = None

    def __post_init__(self) -> None:
        if not isinstance(self.actions, ActionClasses):
            raise TypeError(f"actions: an ActionClasses, got {type(self.actions).__name__}")

    def targets(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        return {"action": self.actions.index(batch["verb"], batch["noun"]).to(device)}

    def num_classes(self, model: torch.nn.Module) -> dict[str, int]:
        if getattr(model, "actions", None) != self.actions:
            raise ValueError(f"actions: the model's action classes ({getattr(model, 'actions', None)!r}) are not "
                             f"the task's ({self.actions!r})")
        return {"action": len(self.actions)}

    def loss(self, output: Any, targets: Mapping[str, torch.Tensor], *, label_smoothing: float = 0.0
             ) -> torch.Tensor:
        return F.cross_entropy(_at_least_fp32(output.action), targets["action"], label_smoothing=label_smoothing)


@dataclass(frozen=True)
class ImageTask(Task):
    input_key: str = "image"
    head_names: tuple[str, ...] = ("label",)

    def heads(self, output: Any) -> dict[str, torch.Tensor]:
        return {"label": output}

    def targets(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        return {"label": torch.as_tensor(batch["label"], device=device)}

    def num_classes(self, model: torch.nn.Module) -> dict[str, int]:
        return {"label": model.num_classes}

    def loss(self, output: Any, targets: Mapping[str, torch.Tensor], *, label_smoothing: float = 0.0
             ) -> torch.Tensor:
        return F.cross_entropy(_at_least_fp32(output), targets["label"], label_smoothing=label_smoothing)

    def metrics(self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
        return classification_metrics(logits["label"], targets["label"])


VIDEO = VideoTask()
IMAGE = ImageTask()
