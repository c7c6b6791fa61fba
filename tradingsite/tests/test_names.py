import pytest

from tradingsite.names import copy_name


@pytest.mark.parametrize(
    ("name", "max_length", "copy"),
    [
        ("Swing", 200, "Swing (Copy)"),
        ("x" * 193, 200, "x" * 193 + " (Copy)"),  # just fits
        ("x" * 194, 200, "x" * 192 + "… (Copy)"),
        ("Swing trend " + "x" * 200, 20, "Swing trend… (Copy)"),  # no space before the "…"
    ],
)
def test_a_copys_name_fits_its_column_and_says_where_it_was_cut(name, max_length, copy):
    assert copy_name(name, max_length=max_length) == copy
    assert len(copy) <= max_length
