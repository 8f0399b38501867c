"""The one set of number formats: whole, short numbers; never "nan", "inf" or a cut number."""

import math

from robustscale.formatting import (
    MISSING,
    anchored_sentence,
    count,
    fixed,
    interval,
    num,
    pct,
    sci,
    with_interval,
)


def test_numbers_read_short_and_whole():
    assert [sci(x) for x in (7.3241e10, 1e25, 0.012, 3.3e-7)] == ["7.32e10", "1e25", "0.012", "3.3e-7"]
    counts = [count(x) for x in (780, 78_000, 1.2e6, 3.45e9, 3.4e13)]
    assert counts == ["780", "78k", "1.2M", "3.45B", "3.4e13"]
    assert (pct(0.6421), pct(0.6421, 0), fixed(0.6), num(0.481234)) == ("64.2%", "64%", "0.6000", "0.4812")


def test_what_is_not_a_number_reads_as_missing():
    for fmt in (sci, count, pct, fixed, num):
        assert fmt(None) == fmt(math.nan) == fmt(math.inf) == MISSING, fmt


def test_intervals():
    assert interval(1e9, None, sci) == "" and interval(1e9, 2e9, sci) == "[1e9, 2e9]"
    assert with_interval({"n": 5e8}, "n", sci) == "5e8"  # no bootstrap: no brackets
    assert with_interval({"n": 5e8, "n_lo": 1e8, "n_hi": 9e8}, "n", sci) == "5e8 [1e8, 9e8]"
    assert with_interval({"n": 5e8, "n_lo": None, "n_hi": 9e8}, "n", sci) == f"5e8 [{MISSING}, 9e8]"


def test_anchored_sentence_says_what_and_why():
    assert anchored_sentence(None) == ""
    fixed_prior = anchored_sentence({"prior": "paper-approach2", "reason": "beta is flat", "strength": None})
    assert "taken from the prior law paper-approach2" in fixed_prior and "do not pin them down" in fixed_prior
    pulled = anchored_sentence({"prior": "law.json", "reason": "requested", "strength": 0.1})
    assert "pulled towards the prior law law.json with strength 0.1" in pulled and "as asked" in pulled
