"""`robustscale data`: build shard stores (`convert`), check (`verify`) and score them (`fid`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Shard stores of training images: convert, verify, FID.",
                       no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")


@data_app.command()
def convert(
    src: str = typer.Argument(..., help="SRC.npz (DeepMind format: image, label), a folder of npz "
                              "files, or a dataset name: cifar10, fashion-mnist."),
    out: Path = typer.Option(..., "--out", help="Store folder to create."),
    name: Optional[str] = typer.Option(None, "--name", help="Source name (default: SRC's stem)."),
    fid: Optional[float] = typer.Option(None, "--fid", help="The source's FID if known (Table 1)."),
    shard_size: int = typer.Option(1_000_000, "--shard-size",  # = store.DEFAULT_SHARD_SIZE
                                   help="Images per shard."),
    num_classes: Optional[int] = typer.Option(
        None, "--num-classes", help="Labels must lie in [0, K) (default: dataset's, else 10)."),
    split: str = typer.Option("train", "--split", help="Dataset split: train or test."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Dataset folder."),
    json_output: bool = _JSON,
) -> None:
    """Convert npz files or a real dataset into memory-mapped .npy shards with a manifest."""
    from robustscale.commands.output import print_json
    from robustscale.data.store import convert as convert_store

    manifest = convert_store(src, out, name=name, fid=fid, shard_size=shard_size,
                             num_classes=num_classes, split=split, data_dir=data_dir,
                             progress=True)
    summary = {"store": str(out), "name": manifest["name"], "count": manifest["count"],
               "shards": len(manifest["shards"]), "shape": manifest["shape"],
               "num_classes": manifest["num_classes"], "fid": manifest["fid"]}
    if json_output:
        print_json(summary)
    else:
        print(f"{out}: {summary['count']} images {tuple(summary['shape'])} of "
              f"{summary['name']!r} in {summary['shards']} shard(s)")


@data_app.command()
def verify(
    store: Path = typer.Argument(..., help="Store folder."),
    json_output: bool = _JSON,
) -> None:
    """Check a store's files, sizes, sha256 checksums and label ranges."""
    from robustscale.commands.output import print_json
    from robustscale.data.store import open_store

    s = open_store(store, verify=True, progress=True)
    summary = {"store": str(store), "name": s.name, "count": len(s), "fid": s.fid, "ok": True}
    if json_output:
        print_json(summary)
    else:
        print(f"{store}: ok ({len(s)} images of {s.name!r}, fid {s.fid})")


@data_app.command()
def fid(
    store: Path = typer.Argument(..., help="Store folder to score."),
    reference: Path = typer.Option(..., "--reference", help="Store of real images."),
    inception_weights: Optional[Path] = typer.Option(
        None, "--inception-weights",
        help="inception-2015-12-05.pt (default: cached, else downloaded)."),
    max_images: int = typer.Option(50_000, "--max-images",  # = fid.DEFAULT_MAX_IMAGES
                                   help="Images per side (random subset)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Inception batch size."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="Torch device (default: cuda if any)."),
    json_output: bool = _JSON,
) -> None:
    """FID of STORE against --reference (clean-fid's Inception); recorded in STORE's manifest."""
    from robustscale.commands.output import print_json
    from robustscale.data.fid import compute_fid

    result = compute_fid(store, reference, inception_weights, max_images=max_images,
                         batch_size=batch_size, device=device, progress=True)
    if json_output:
        print_json(result)
    else:
        print(f"{store}: FID {result['fid']:.3f} against {reference} "
              f"({result['images']} vs {result['reference_images']} images; recorded)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
