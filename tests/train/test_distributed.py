"""Two gloo processes (torchrun) train what one process does at the same global batch.

Without SyncBatchNorm (torch refuses it on CPU) each process normalises its own half of the
batch; one process with 2 micro-batches (gradient accumulation) normalises the same halves, and
every random choice is keyed by the global micro-batch, so the two runs do the same arithmetic up
to the order of float reductions. BatchNorm running statistics are not compared: DDP keeps rank
0's (its half), accumulation updates them with both halves.
"""

import json

from safetensors.torch import load_file


def test_two_gloo_processes_match_one_process(tmp_path, tiny, run_cli):
    args = [*tiny, "--samples", "192", "--eval-every", "192"]
    run_cli("train", *args, "--accum-steps", "2", "--out", tmp_path / "one")
    run_cli("train", *args, "--out", tmp_path / "two",
            launcher=["-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533"])
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    a, b = (load_file(tmp_path / "one" / "model.safetensors"),
            load_file(tmp_path / "two" / "model.safetensors"))
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    worst = max((a[k] - b[k]).abs().max().item() for k in params)
    scale = max(a[k].abs().max().item() for k in params)
    assert worst < 1e-5 * scale, (worst, scale)
    m1 = json.loads((tmp_path / "one" / "metrics.jsonl").read_text().splitlines()[-1])
    m2 = json.loads((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(m1["train_loss"] - m2["train_loss"]) < 1e-5
