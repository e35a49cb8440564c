"""zoo studio: a local web studio over the same library functions as the CLI (needs the `studio` extra)."""
