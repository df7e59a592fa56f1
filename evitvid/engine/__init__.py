"""Training and evaluation: `Trainer` fits a model for a `Task`; `evaluate` scores one.

- `config.TrainConfig`: every setting of a run.
- `tasks`: what a batch holds, the loss and the metrics (`VideoTask`, `ActionTask`, `ImageTask`).
- `mixup`: mixup and CutMix of a batch and its targets (`Mixer`).
- `trainer.Trainer`: the loop, checkpoints and exact resume, DDP.
- `evaluate.evaluate`: predictions and metrics over a dataset.
- `schedule.lr_at`: warm-up then cosine.
- `memory.check_step_memory`: whether a training step at the run's batch fits the device,
  before the run starts (`MemoryFitError` names batch_size and what fits).

Where a model runs (device, precision, memory layout, `torch.compile`) is `evitvid.runtime`.
"""
from .config import TrainConfig
from .evaluate import EvalResult, evaluate
from .memory import MemoryFitError, StepMemory, check_step_memory
from .schedule import lr_at
from .tasks import IMAGE, VIDEO, ActionTask, ImageTask, Task, VideoTask
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "EvalResult", "evaluate", "lr_at", "Task", "VideoTask", "ActionTask", "ImageTask",
           "VIDEO", "IMAGE", "check_step_memory", "MemoryFitError", "StepMemory"]
