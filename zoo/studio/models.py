"""The bodies of the studio's POST requests, generated from the options' one declaration
(zoo.dream.options, zoo.train.config.TRAIN): their fields, limits and messages are the CLI's, and so is
the OpenAPI schema the page reads its form from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from zoo.dream import options as dream
from zoo.options import Option, name_rule, request_model
from zoo.train.config import TRAIN

MODEL_NAME = Option("name", str, None, "the zoo model name to register", required=True, **name_rule())

DreamRequest = request_model(
    "DreamRequest", "A dream: the fields of `zoo dream` (files are studio references such as uploads/…/photo.png).",
    [dream.INPUT, *dream.DREAM.pick(dream.STUDIO_FIELDS), *dream.DREAM.pick(dream.STUDIO_MEDIA_FIELDS)],
    defaults={"init": "image", "seed": 0, "device": "cpu"})

SpectrogramRequest = request_model(
    "SpectrogramRequest", "The spectrogram picture a sound dream starts from (the worker decodes the sound).",
    [dream.INPUT, *dream.SOUND.pick(("n_fft", "hop", "freq_scale", "stereo"))])

# The training options the studio offers (the rest keep TrainConfig's defaults).
TRAIN_FIELDS = ("dataset", "model", "label", "max_iter", "batch", "micro_batch", "base_lr", "lr_policy", "augment",
                "init", "freeze_to", "eval_every", "ckpt_every", "log_every", "workers", "seed", "preview", "name")
TrainRequest = request_model(
    "TrainRequest", "`zoo train` into a studio run folder; with `name`, exported as that zoo model at the end.",
    TRAIN.pick(TRAIN_FIELDS),
    extra={"run": (str, Field(description="run name (a folder under the studio's runs/)", max_length=200)),
           "resume": (bool, False)})


AtlasRequest = request_model(
    "AtlasRequest", "`zoo atlas` for one brain: the same start through every dreamable blob.",
    dream.ATLAS.pick(("model", "start", "size", "octaves", "iterations", "step", "seed", "blobs")),
    defaults={"start": "noise", "size": 128, "octaves": 2, "iterations": 5, "step": 1.5, "seed": 0},
    extra={"device": (Literal["cpu", "cuda"], "cpu")})

ChannelsRequest = request_model(
    "ChannelsRequest", "`zoo atlas --channels BLOB`: every channel's picture of one blob (or the channels "
    "listed), cached in $ZOO_HOME/atlas; pictures already there are kept.",
    dream.ATLAS.pick(("model", "size", "iterations", "seed", "batch")),
    defaults={"size": 128, "iterations": 64, "seed": 0, "batch": 16},
    extra={"blob": (str, Field(description="a dreamable blob of the brain", min_length=1, max_length=500)),
           "channels": (list[Annotated[int, Field(ge=0, le=1_000_000)]] | None,
                        Field(None, max_length=4096, description="only these channels (default: every one)")),
           "device": (Literal["cpu", "cuda"], "cpu")})

ImportRequest = request_model(
    "ImportRequest", "`zoo convert --name`: uploaded Caffe files registered as a zoo model.", [MODEL_NAME],
    extra={"prototxt": (str, Field(description="an uploaded prototxt (uploads/…)")),
           "weights": (str, Field(description="an uploaded caffemodel (uploads/…)")),
           "mean": (str | None, Field(None, description="an uploaded mean.binaryproto")),
           "labels": (str | None, Field(None, description="an uploaded labels file, one class per line")),
           "mean_pixel": (list[float] | None, Field(None, min_length=1, max_length=4)),
           "channel_order": (Literal["BGR", "RGB"] | None, None),
           "scale": (float | None, None),
           "input_size": (list[int] | None, Field(None, min_length=2, max_length=2,
                                                  description="H, W pictures are fitted to")),
           "resize": (int | None, Field(None, ge=0, description="short side before the centre crop; 0: straight "
                                                                "to input_size")),
           "transpose": (bool | None, Field(None, description="trained on x/y-swapped pictures (MTCNN's)"))})

ExportRequest = request_model("ExportRequest", "`zoo export RUN --name NAME`.", [MODEL_NAME])
