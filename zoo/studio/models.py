"""The bodies of the studio's POST requests (their fields are the OpenAPI schema the page reads)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DreamRequest(BaseModel):
    """A dream: the fields of `zoo dream` (files are studio references such as uploads/…/photo.png)."""

    input: str | None = Field(None, description="start image: a studio file (uploads/… or outputs/…) or an "
                              "absolute path in a folder named with --folder")
    init: str = Field("image", description="image | noise[:SPREAD] | gradient[:DEG] | color[:#RRGGBB]")
    model: str | None = Field(None, description="a zoo model name (default: the default brain)")
    layers: list[str] = Field(default_factory=list, description="BLOB, BLOB:CH[,CH..], BLOB:LABEL or BLOB:CH@Y,X")
    weights: list[float] = Field(default_factory=list, description="one per layer, default 1")
    guide: str | None = Field(None, description="guide image: a studio file")
    octaves: int | None = Field(None, ge=1, le=32)
    octave_scale: float | None = Field(None, ge=1.0, le=4.0)
    iterations: int | None = Field(None, ge=1, le=10000)
    step: float | None = Field(None, ge=0.0)
    jitter: int | None = Field(None, ge=0)
    tile: int | None = Field(None, ge=16)
    size: str | None = Field(None, description="W or WxH: scale the input first")
    seed: int = 0
    preset: str | None = None
    device: Literal["cpu", "cuda"] = "cpu"


class AtlasRequest(BaseModel):
    model: str
    start: str = Field("noise", description="noise | gradient | color[:#RRGGBB]")
    size: int = Field(128, ge=16, le=4096)
    octaves: int = Field(2, ge=1, le=32)
    iterations: int = Field(5, ge=1, le=10000)
    step: float = Field(1.5, ge=0.0)
    seed: int = 0
    blobs: list[str] = Field(default_factory=list, description="default: every dreamable blob")
    device: Literal["cpu", "cuda"] = "cpu"


class ImportRequest(BaseModel):
    """`zoo convert --name`: uploaded Caffe files registered as a zoo model."""

    name: str
    prototxt: str = Field(description="an uploaded prototxt (uploads/…)")
    weights: str = Field(description="an uploaded caffemodel (uploads/…)")
    mean: str | None = Field(None, description="an uploaded mean.binaryproto")
    labels: str | None = Field(None, description="an uploaded labels file, one class per line")
    mean_pixel: list[float] | None = Field(None, min_length=1, max_length=4)
    channel_order: Literal["BGR", "RGB"] | None = None
    scale: float | None = None


class TrainRequest(BaseModel):
    """`zoo train` into a studio run folder; with `name`, exported as that zoo model at the end."""

    run: str = Field(description="run name (a folder under the studio's runs/)")
    dataset: str | None = Field(None, description="a class-folder path inside a --folder, or arthistory, lfw")
    model: str | None = None
    label: str | None = None
    max_iter: int | None = Field(None, ge=1)
    batch: int | None = Field(None, ge=1)
    micro_batch: int | None = Field(None, ge=1)
    base_lr: float | None = Field(None, gt=0)
    lr_policy: Literal["poly", "step", "fixed"] | None = None
    augment: str | None = None
    init: Literal["pretrained", "scratch"] | None = None
    freeze_to: str | None = None
    eval_every: int | None = Field(None, ge=1)
    ckpt_every: int | None = Field(None, ge=1)
    log_every: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0, le=16)
    seed: int | None = None
    preview: bool | None = None
    name: str | None = Field(None, description="export as this zoo model when done")
    resume: bool = False


class ExportRequest(BaseModel):
    name: str
