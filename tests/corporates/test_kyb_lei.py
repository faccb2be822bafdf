import pytest

from corporates.lei import InvalidLei, lei_check_digits, lei_normalise


@pytest.mark.parametrize("lei", ["5493001KJTIIGC8Y1R12", "529900T8BM49AURSDO55", "7LTWFZYICNSX8D621K86"])
def test_real_leis_pass(lei):
    assert lei_normalise(lei) == lei


def test_spaces_and_lower_case_are_normalised():
    assert lei_normalise(" 5493 001k jtii gc8y 1r12 ") == "5493001KJTIIGC8Y1R12"


def test_check_digits_complete_a_prefix():
    assert lei_check_digits("5493001KJTIIGC8Y1R") == "12"


@pytest.mark.parametrize(
    "bad",
    [
        "5493001KJTIIGC8Y1R13",  # wrong check digits
        "5493001KJTIIGC8Y1R2",  # too short
        "5493001KJTIIGC8Y1R123",  # too long
        "5493001KJTIIGC8Y1RAB",  # letters where the check digits go
        "5493001KJTIIGC8Y1R-2",  # punctuation
        "",
    ],
)
def test_bad_leis_are_refused(bad):
    with pytest.raises(InvalidLei) as caught:
        lei_normalise(bad)
    assert caught.value.code == "invalid_lei"


def test_a_single_swapped_pair_is_caught():
    # MOD 97-10 catches every transposition of adjacent characters.
    assert lei_normalise("7LTWFZYICNSX8D621K86")
    with pytest.raises(InvalidLei):
        lei_normalise("7LTWFZYICNSX8D612K86")


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(prefix=st.text(alphabet=ALNUM, min_size=18, max_size=18))
def test_any_prefix_completed_with_its_check_digits_is_valid(prefix):
    lei = prefix + lei_check_digits(prefix)
    assert lei_normalise(lei) == lei


@given(
    prefix=st.text(alphabet=ALNUM, min_size=18, max_size=18),
    position=st.integers(min_value=0, max_value=19),
    replacement=st.sampled_from(ALNUM),
)
def test_any_single_character_error_is_caught(prefix, position, replacement):
    lei = prefix + lei_check_digits(prefix)
    # MOD 97-10 guarantees this for a digit replaced by a digit, or a letter by a
    # letter (a difference under 97 at one place value); a letter for a digit
    # changes the string's length and is caught only with probability 96/97.
    if replacement == lei[position] or replacement.isdigit() != lei[position].isdigit():
        return
    altered = lei[:position] + replacement + lei[position + 1 :]
    with pytest.raises(InvalidLei):
        lei_normalise(altered)
