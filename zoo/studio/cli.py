"""`zoo studio`: serve the web studio on this machine (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import secrets
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from zoo.errors import UserError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def studio_cmd(
    host: Annotated[str, typer.Option("--host", help="address to listen on; anything but loopback needs the token")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 7860,
    open_: Annotated[bool, typer.Option("--open", help="open the studio in the default browser")] = False,
    folder: Annotated[list[Path] | None, typer.Option(
        "--folder", help="a folder the studio may read (datasets, pictures); repeatable")] = None,
) -> None:
    """Serve zoo studio, a local web app for dreaming, brains, atlases and training."""
    try:
        import uvicorn

        from zoo.studio.app import Settings, create_app, is_loopback
    except ImportError as e:
        raise UserError(f"zoo studio needs the studio extra ({e.name} is missing): pip install -e '.[studio]'") \
            from None
    for f in folder or []:
        if not f.is_dir():
            raise UserError(f"--folder {f}: not a folder")
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    settings = Settings(host=host, port=port, token=token, folders=[f.resolve() for f in folder or []])
    app = create_app(settings)
    shown = host if ":" not in host else f"[{host}]"
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    err.print(f"zoo studio on {url}" + ("  (the token is printed only this once)" if token else ""), markup=False)
    if open_:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("studio")(studio_cmd)
