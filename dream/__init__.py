"""dream: DeepDream on any brain of the zoo, from a Recipe to pixels.

Module map (one line each; the library never prints, front ends pass callbacks):

- options.py    every dream option, declared once (the CLI, the studio and recipes are generated from it)
- presets.py    DreamParams (what the render loop reads) and the named parameter sets
- recipe.py     Recipe: everything that decides a dream's pixels, carried in the image and read back
- run.py        the one library entry: `new_recipe`, `prepare` (check everything), `run`, `dream_atlas`
- pipeline.py   from a recipe to the loop's inputs: start image, targets, objective, tile plan, device
- brain.py      a zoo model as dream needs it: torch net, preprocessing, dreamable blobs, labels
- objectives.py what a dream maximises: objectives over named blobs, composable with + - and *
- render.py     the DeepDream loop: octaves, jitter, normalised gradient ascent, tiled gradients
- geometry.py   octave sizes, tile layouts, blend weights, jitter: pure functions
- starts.py     start images: a photo, noise, a gradient or a colour
- output.py     writing results atomically, with the recipe in the file
- sequence.py   zoom/rotate feedback frames
- atlas.py      a layer atlas: the same start through every dreamable blob, as a sheet and a page
- video.py      clips: decode, dream frame by frame with flow-carried detail, encode; clip records
- video_run.py  the library entry for clip dreams
- flow.py       optical flow, warping and occlusion as pure functions
- distributed.py torchrun ranks: tiles of a step shared out, gradients summed, chunks of a clip
- compiled.py   the opt-in `torch.compile` path (`--compile`) and its cache
- alloc.py      keep freed memory for the next step instead of returning it to the kernel
- cli.py        `zoo dream`, `zoo layers`, `zoo labels`, `zoo atlas`: parse -> recipe -> run
- video_cli.py  the CLI side of clips and `--nproc`: torchrun relaunch, progress, rank-0 output
"""
