"""`robustscale data`: build shard stores (`convert`), check (`verify`) and score them (`fid`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustscale.commands.output import JsonOption, emit

data_app = typer.Typer(help="Shard stores of training images: convert, verify, FID.",
                       no_args_is_help=True)

# The defaults below mirror the library's (data.convert.DEFAULT_SHARD_SIZE, data.fid.DEFAULT_MAX_IMAGES),
# read lazily so that `robustscale --help` imports neither numpy-heavy module.


@data_app.command()
def convert(
    src: str = typer.Argument(..., help="SRC.npz (DeepMind format: image, label), a folder of npz "
                              "files, or a dataset name: cifar10, cifar100, svhn, tiny-imagenet, "
                              "fashion-mnist."),
    out: Path = typer.Option(..., "--out", help="Store folder to create."),
    name: Optional[str] = typer.Option(None, "--name", help="Source name (default: SRC's stem)."),
    fid: Optional[float] = typer.Option(None, "--fid", help="The source's FID if known (Table 1)."),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="Images per shard (1,000,000)."),
    num_classes: Optional[int] = typer.Option(
        None, "--num-classes", help="Labels must lie in [0, K) (default: dataset's, else 10)."),
    split: str = typer.Option("train", "--split", help="Dataset split: train or test."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Dataset folder."),
    json_output: JsonOption = False,
) -> None:
    """Convert npz files or a real dataset into memory-mapped .npy shards with a manifest.

    Checksums are computed while writing and the store is recorded as verified.
    """
    from robustscale.data.convert import DEFAULT_SHARD_SIZE
    from robustscale.data.convert import convert as convert_store

    manifest = convert_store(src, out, name=name, fid=fid, shard_size=shard_size or DEFAULT_SHARD_SIZE,
                             num_classes=num_classes, split=split, data_dir=data_dir,
                             progress=not json_output)
    summary = {"store": str(out), "name": manifest["name"], "count": manifest["count"],
               "shards": len(manifest["shards"]), "shape": manifest["shape"],
               "num_classes": manifest["num_classes"], "fid": manifest["fid"],
               "verified": manifest["verified"]}
    emit(summary, json_output, lambda s: print(f"{out}: {s['count']} images {tuple(s['shape'])} of "
                                               f"{s['name']!r} in {s['shards']} shard(s)"))


@data_app.command()
def verify(
    store: Path = typer.Argument(..., help="Store folder."),
    json_output: JsonOption = False,
) -> None:
    """Check a store's files, sizes, sha256 checksums and label ranges; record the time."""
    from robustscale.data.store import open_store

    s = open_store(store, verify=True, progress=not json_output)
    summary = {"store": str(store), "name": s.name, "count": len(s), "fid": s.fid, "ok": True,
               "verified": s.verified}
    emit(summary, json_output, lambda _: print(f"{store}: ok ({len(s)} images of {s.name!r}, fid {s.fid})"))


@data_app.command()
def fid(
    store: Path = typer.Argument(..., help="Store folder to score."),
    reference: Path = typer.Option(..., "--reference", help="Store of real images."),
    inception_weights: Optional[Path] = typer.Option(
        None, "--inception-weights",
        help="inception-2015-12-05.pt (default: cached, else downloaded)."),
    max_images: Optional[int] = typer.Option(None, "--max-images",
                                             help="Images per side (random subset; 50,000)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Inception batch size."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="Torch device (default: cuda if any)."),
    json_output: JsonOption = False,
) -> None:
    """FID of STORE against --reference (clean-fid's Inception); recorded in STORE's manifest."""
    from robustscale.data.fid import DEFAULT_MAX_IMAGES, compute_fid

    result = compute_fid(store, reference, inception_weights, max_images=max_images or DEFAULT_MAX_IMAGES,
                         batch_size=batch_size, device=device, progress=not json_output)
    emit(result, json_output, lambda r: print(
        f"{store}: FID {r['fid']:.3f} against {reference} ({r['images']} vs {r['reference_images']} "
        f"images; recorded)"))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
