"""stylesearch.model: image tower, text tower, attribute head, JointModel, model folders."""

from stylesearch.model.io import ModelFolderError, load_model, read_model_config, save_model
from stylesearch.model.joint import JointModel
from stylesearch.model.towers import TextTower, build_image_backbone

__all__ = [
    "JointModel",
    "ModelFolderError",
    "TextTower",
    "build_image_backbone",
    "load_model",
    "read_model_config",
    "save_model",
]
