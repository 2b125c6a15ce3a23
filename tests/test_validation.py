"""The contract of course_utils.validation: bad values are refused by name, with the allowed range."""
import pytest
import torch

from course_utils.validation import (check_choice, check_device, check_integer, check_number, check_parameters, choice,
                                     choice_list, integer, integer_list, number, number_list, string)


@pytest.mark.parametrize("value, error", [(0, ValueError), (1001, ValueError), (True, TypeError), (2.0, TypeError),
                                          ("5", TypeError), (None, TypeError)])
def test_integer_refuses_out_of_range_and_non_integers(value, error):
    with pytest.raises(error, match=r"NUM_STEPS must be an integer in \[1, 1000\], got"):
        check_integer("NUM_STEPS", value, 1, 1000)


def test_integer_accepts_its_range():
    for value in (1, 500, 1000):
        check_integer("NUM_STEPS", value, 1, 1000)


@pytest.mark.parametrize("value, error", [(0, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                          (float("inf"), ValueError), (False, TypeError), ("0.1", TypeError)])
def test_number_with_open_low_end(value, error):
    with pytest.raises(error, match=r"STEP_SIZE must be a number in \(0, 1\]"):
        check_number("STEP_SIZE", value, 0, 1, open_low=True)
    check_number("STEP_SIZE", 1, 0, 1, open_low=True)


def test_choice_names_the_choices():
    with pytest.raises(ValueError, match="SCHEDULE must be one of 'linear', 'cosine', got 'cosin'"):
        check_choice("SCHEDULE", "cosin", ("linear", "cosine"))


def test_lists_check_every_entry():
    with pytest.raises(ValueError, match=r"STEP_COUNTS must be a non-empty list of integers in \[2, 1000\], got \[5, 1\]"):
        integer_list(2, 1000)("STEP_COUNTS", [5, 1])
    with pytest.raises(TypeError, match="STEP_COUNTS must be a non-empty list"):
        integer_list(2, 1000)("STEP_COUNTS", [5, True])
    with pytest.raises(TypeError, match="STEP_COUNTS must be a non-empty list"):
        integer_list(2, 1000)("STEP_COUNTS", [])
    with pytest.raises(ValueError, match=r"SAMPLERS must be a non-empty list drawn from 'ddim', 'ddpm', got \['ddim', 'euler'\]"):
        choice_list("ddim", "ddpm")("SAMPLERS", ["ddim", "euler"])
    with pytest.raises(ValueError, match=r"SCALES must be a non-empty list of numbers in \[0, 5\], got \[0.5, 6\]"):
        number_list(0, 5)("SCALES", [0.5, 6])
    for bad in ([0.5, False], [], 1.0, [float("nan")]):
        with pytest.raises((TypeError, ValueError), match="SCALES must be a non-empty list of numbers"):
            number_list(0, 5)("SCALES", bad)
    number_list(0, 5)("SCALES", [0, 2.5, 5])
    with pytest.raises(TypeError, match="PROMPT must be a string"):
        string()("PROMPT", 123)


def test_check_parameters_refuses_a_misspelled_parameter():
    namespace = {"NUM_STEPS": 10, "NUM_STEP": 50, "HTML": type("HTML", (), {}), "math": pytest}
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) NUM_STEP \(did you mean NUM_STEPS\?\)"):
        check_parameters(namespace, NUM_STEPS=integer(1, 1000))
    del namespace["NUM_STEP"]
    check_parameters(namespace, NUM_STEPS=integer(1, 1000))  # a class named in capitals is not a parameter


def test_check_parameters_checks_each_value_and_allows_none_where_asked():
    with pytest.raises(ValueError, match=r"NUM_STEPS must be an integer in \[1, 1000\], got 0"):
        check_parameters({"NUM_STEPS": 0}, NUM_STEPS=integer(1, 1000))
    check_parameters({"STEP_SIZE": None, "MODE": "a"}, STEP_SIZE=number(0, 1, allow_none=True), MODE=choice("a", "b"))
    with pytest.raises(ValueError, match="the parameter SEED is not defined"):
        check_parameters({}, SEED=integer(0, 10))


def test_check_device_parses_names_and_refuses_devices_this_machine_lacks():
    assert check_device("device", "cpu") == torch.device("cpu")
    assert check_device("device", torch.device("cpu")) == torch.device("cpu")
    assert check_device("device", "meta", available=False) == torch.device("meta")  # only moved to: allowed
    with pytest.raises(ValueError, match=r"^device must be one of 'cpu', 'cuda', 'mps', got 'meta'"):
        check_device("device", "meta")
    with pytest.raises(ValueError, match=r"^device must be a device name such as 'cpu'"):
        check_device("device", "gpu", available=False)
    with pytest.raises(TypeError, match=r"^device must be a string or torch.device"):
        check_device("device", 0)
    if torch.cuda.device_count() < 8:
        with pytest.raises(ValueError, match=r"^device 'cuda:7' was asked for, but this torch sees \d CUDA GPU"):
            check_device("device", "cuda:7")
