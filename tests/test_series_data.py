"""CSV series through pandas, the transforms and their exact inverses, and a one-line error per bad input."""

import numpy as np
import pytest

from seqlab.data.series import load_series
from seqlab.data.spec import load_dataset
from seqlab.errors import SeqlabError
from seqlab.transforms import Transform

PRICES = np.array([10.0, 10.5, 10.2, 11.0, 11.3, 10.9, 12.0, 12.4])


@pytest.mark.parametrize("spec", ["log", "diff", "log_return", "standardize", "log_return,standardize", "none"])
def test_transforms_invert_exactly(spec):
    t = Transform.parse(spec).fit(PRICES[:6])
    y = t.apply(PRICES)
    assert len(y) == len(PRICES) - t.lost
    for k in (1, 3, len(y) - 1):  # forecast the rest of the series from its first values
        context = PRICES[: k + t.lost]
        back = t.invert(y[k:], context)
        assert np.allclose(back, PRICES[k + t.lost :], rtol=1e-13, atol=0)
    paths = np.stack([y[2:], y[2:] * 0.5])  # (S, h): sample paths invert row by row
    assert t.invert(paths, PRICES[: 2 + t.lost]).shape == paths.shape


def test_transform_values_and_round_trip_through_json():
    t = Transform.parse("log_return,standardize").fit(PRICES)
    returns = np.diff(np.log(PRICES))
    assert np.allclose(t.apply(PRICES), (returns - returns.mean()) / returns.std())
    again = Transform.from_json(t.to_json())
    assert np.array_equal(again.apply(PRICES), t.apply(PRICES)) and str(again) == "log,diff,standardize"


def test_log_of_a_non_positive_price_names_the_line():
    with pytest.raises(SeqlabError, match=r"prices.csv: line 5 is 0; the log transform needs positive values"):
        Transform.parse("log").apply(np.array([1.0, 2.0, 3.0, 0.0]), "prices.csv", np.arange(2, 6))
    with pytest.raises(SeqlabError, match="unknown transform 'sqrt'"):
        Transform.parse("log,sqrt")


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_msft_default_column_and_dates():
    (s,) = load_series("msft")
    assert s.name == "Close" and len(s) == 7983 and s.values[-1] == pytest.approx(83.87)
    assert str(s.dates[0])[:10] == "1986-03-13" and s.lines[0] == 2


def test_mixed_date_formats_wide_and_long_forms(tmp_path):
    wide = write(tmp_path, "Date,A,B\n2017-11-10,1,10\nNov 11 2017,2,20\n2017/11/12,3,30\n")
    a, b = load_series(wide, column="A,B")
    assert a.name == "A" and np.array_equal(b.values, [10, 20, 30])
    assert [str(d)[:10] for d in a.dates] == ["2017-11-10", "2017-11-11", "2017-11-12"]
    long = write(tmp_path, "unique_id,ds,y\nx,2000-01-01,1\ny,2000-01-01,5\nx,2000-01-02,2\ny,2000-01-02,6\n", "l.csv")
    x, y = load_series(long, id_column="unique_id", date_column="ds")
    assert (x.name, y.name) == ("x", "y") and np.array_equal(y.values, [5, 6]) and list(y.lines) == [3, 5]


@pytest.mark.parametrize(
    "text, options, message",
    [
        ("Date,Close\n2000-01-01,1\n", {"column": "Price"}, "no column 'Price'; the file has columns: Date, Close"),
        ("Date,Close\n2000-01-01,1\n2000-01-02,abc\n", {}, "line 3: 'abc' is not a number"),
        (
            "Date,Close\n2000-01-01,1\n2000-01-02,\n2000-01-03,3\n",
            {},
            "line 3: missing value (1 in all); choose fill",
        ),
        ("Date,Close\n2000-01-02,1\n2000-01-01,2\n", {}, "line 3: date 2000-01-01 comes before the previous row's"),
        ("Date,Close\n2000-01-01,1\n2000-01-01,2\n", {}, "line 3: date 2000-01-01 repeats the previous row's"),
        ("Date,Close\n2000-01-01,1\nyesterday,2\n", {}, "line 3: cannot read 'yesterday' as a date"),
        ("", {}, "the file is empty"),
        ("Date,Close\n", {}, "has a header but no data rows"),
        ("Date,Open\n2000-01-01,1\n", {}, "which column holds the values? give column (the file has: Date, Open)"),
    ],
)
def test_bad_csv_input_names_what_and_where(tmp_path, text, options, message):
    with pytest.raises(SeqlabError) as e:
        load_series(write(tmp_path, text), **options)
    assert message in str(e.value)


def test_fill_policies(tmp_path):
    path = write(tmp_path, "Date,Close\n2000-01-01,1\n2000-01-02,\n2000-01-03,3\n")
    assert np.array_equal(load_series(path, fill="ffill")[0].values, [1, 1, 3])
    assert np.array_equal(load_series(path, fill="interpolate")[0].values, [1, 2, 3])
    dropped = load_series(path, fill="drop")[0]
    assert np.array_equal(dropped.values, [1, 3]) and list(dropped.lines) == [2, 4] and len(dropped.dates) == 2


def test_a_series_too_short_for_the_split(tmp_path):
    path = write(tmp_path, "Date,Close\n2000-01-01,1\n2000-01-02,2\n2000-01-03,3\n")
    with pytest.raises(SeqlabError, match="3 rows are too few to hold out 0.2"):
        load_dataset({"data": str(path)})


def test_series_dataset_joins_several_series_with_gaps(tmp_path):
    rows = "".join(f"2000-01-{d:02d},{10 + d},{20 + d * d}\n" for d in range(1, 21))
    path = write(tmp_path, "Date,A,B\n" + rows)
    data = load_dataset({"data": str(path), "column": "A,B", "transform": "diff"})
    assert data.meta["series"] == ["A", "B"] and data.meta["column"] == "A,B"
    train = data.train.numpy()
    assert np.isnan(train).sum() == 1 and len(train) == 2 * (16 - 1) + 1  # 16 training rows, 1 lost to diff
    assert np.allclose(train[:15], 1.0)  # A rises by one a day


def test_covariates_travel_with_their_rows(tmp_path):
    path = write(tmp_path, "Date,Close,Volume\n2000-01-01,1,100\n2000-01-02,,200\n2000-01-03,3,300\n")
    (s,) = load_series(path, covariates="Volume", fill="drop")
    assert np.array_equal(s.values, [1, 3]) and np.array_equal(s.covariates[:, 0], [100, 300])
    with pytest.raises(SeqlabError, match="no covariate column 'Vol'; the file has columns: Date, Close, Volume"):
        load_series(path, covariates="Vol")
    rows = "".join(f"2000-01-{d:02d},{10 + d},{d * 7}\n" for d in range(1, 31))
    data = load_dataset({"data": str(write(tmp_path, "Date,Close,Volume\n" + rows, "c.csv")), "covariates": "Volume"})
    assert data.train.shape == (23, 2) and data.train[0, 1] == 14  # the return of day 2 beside day 2's volume


def test_range_feature_is_parkinsons_variance_beside_the_covariates(tmp_path):
    text = "Date,Close,High,Low,Volume\n2000-01-01,10,11,9,5\n2000-01-02,,12,10,6\n2000-01-03,11,11.5,10.5,7\n"
    (s,) = load_series(write(tmp_path, text), covariates="Volume", features="range", fill="drop")
    expected = [(np.log(11) - np.log(9)) ** 2, (np.log(11.5) - np.log(10.5)) ** 2]  # row 2 dropped with its gap
    assert np.array_equal(s.covariates[:, 0], [5, 7])
    np.testing.assert_allclose(s.covariates[:, 1], np.array(expected) / (4 * np.log(2)), rtol=1e-15)
    (msft,) = load_series("msft", features="range")  # the bundled OHLC file; days with High == Low give 0
    assert msft.covariates.shape == (7983, 1) and (msft.covariates >= 0).all() and (msft.covariates == 0).any()
    data = load_dataset({"data": "msft", "features": "range"})
    assert data.train.shape[1] == 2 and data.meta["features"] == "range"


@pytest.mark.parametrize(
    "text, message",
    [
        ("Date,Close\n2000-01-01,1\n", "features range needs High and Low columns (the day's high and low prices)"),
        ("Date,Close,High,Low\n2000-01-01,1,2,1\n2000-01-02,1,1,2\n", "line 3: a high below the low (High 1, Low 2)"),
        ("Date,Close,high,low\n2000-01-01,1,2,0\n", "line 2: a non-positive low (high 2, low 0)"),
    ],
)
def test_range_feature_errors_name_what_and_where(tmp_path, text, message):
    with pytest.raises(SeqlabError) as e:
        load_series(write(tmp_path, text), features="range")
    assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SeqlabError, match="unknown features 'spread'; choose from range"):
        load_series(write(tmp_path, text), features="spread")
