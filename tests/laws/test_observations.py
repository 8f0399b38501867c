"""Every bad-input case: one line naming column and row; CLI exit 2 and no output file."""

import numpy as np
import pytest

from robustscale.errors import RobustscaleError
from robustscale.laws import load_observations
from robustscale.laws.observations import final_points, small_run_mask


def write(df, path) -> str:
    df.to_csv(path, index=False)
    return str(path)


def _bad(df, case):
    df = df.copy()
    if case == "missing":
        return df.drop(columns="loss"), r"missing column 'loss'"
    if case == "empty":
        return df.iloc[:0], "empty table"
    df["params"] = df["params"].astype(object)
    df["loss"] = df["loss"].astype(object)
    df["flops"] = df["flops"].astype(object)
    if case == "non-numeric":
        df.loc[2, "params"] = "big"
        return df, r"column 'params' row 3: expected a number, got 'big'"
    if case == "nan":
        df.loc[4, "loss"] = np.nan
        return df, r"column 'loss' row 5: expected a number"
    if case == "inf":
        df.loc[1, "flops"] = np.inf
        return df, r"column 'flops' row 2: expected a finite number"
    if case == "nonpositive-params":
        df.loc[0, "params"] = 0
        return df, r"column 'params' row 1: expected a positive number"
    if case == "nonpositive-samples":
        df.loc[3, "samples"] = -5
        return df, r"column 'samples' row 4: expected a positive number"
    if case == "nonpositive-flops":
        df.loc[6, "flops"] = 0.0
        return df, r"column 'flops' row 7: expected a positive number"
    if case == "negative-fid":
        df.loc[7, "fid"] = -1.0
        return df, r"column 'fid' row 8: expected FID >= 0"
    raise AssertionError(case)


CASES = ["missing", "empty", "non-numeric", "nan", "inf", "nonpositive-params", "nonpositive-samples",
         "nonpositive-flops", "negative-fid"]


@pytest.mark.parametrize("case", CASES)
def test_library_errors(small_obs, tmp_path, case):
    df, message = _bad(small_obs.reset_index(drop=True), case)
    path = write(df, tmp_path / "obs.csv")
    with pytest.raises(RobustscaleError, match=message) as err:
        load_observations(path)
    assert "\n" not in str(err.value) and "obs.csv" in str(err.value)


@pytest.mark.parametrize("case", ["missing", "nan", "negative-fid"])
def test_cli_exit_2_and_no_output(small_obs, tmp_path, case, cli):
    df, message = _bad(small_obs.reset_index(drop=True), case)
    path = write(df, tmp_path / "obs.csv")
    out = tmp_path / "law.json"
    r = cli("fit", path, "--approach", "2", "--out", out)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "obs.csv"]


def test_parquet_and_types(small_obs, tmp_path):
    path = tmp_path / "obs.parquet"
    small_obs.to_parquet(path)
    df = load_observations(path)
    assert len(df) == len(small_obs) and df["params"].dtype == np.float64 and df["run"].dtype == object


def test_final_points_and_exclusion_rule(sim_obs):
    runs = final_points(sim_obs)
    assert len(runs) == 232  # §3.1: 4 generators x 8 models x 5 sizes + 3 x 8 x 3
    dropped = runs[small_run_mask(runs)]
    # App. F.2.1: N < 100M (4 of Table 2's models) and D > 10M and FID < 10 (all but EDM-5, EDM-6)
    assert len(dropped) == 4 * 3 * 4 + 4 * 1 * 1
    assert (dropped["params"] < 100e6).all() and (dropped["samples"] > 10e6).all()
    assert (dropped["fid"] < 10).all()
