"""train: fine-tune a zoo brain (or train one from scratch) on your own images, then export it back
to the zoo. Data (datasets, pack, augment, data), net (model, fillers), run (config, schedule, loop,
checkpoint, dist, logbook, preview) and export; `cli` holds the thin commands."""
