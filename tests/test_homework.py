"""course_utils.homework: self-checks that explain what is wrong, and quizzes that work without widgets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils import homework
from course_utils.homework import (COURSE_QUIZ, ExerciseCheckError, check_close, check_range, check_shape, quiz,
                                   quiz_text, quiz_widget)


# --------------------------------------------------------------------------------------------------
# self-checks
# --------------------------------------------------------------------------------------------------

def test_check_error_is_an_assertion_error():
    """nbgrader and pytest count a failed check as a failed test because it is an AssertionError."""
    assert issubclass(ExerciseCheckError, AssertionError)


def test_check_close_names_the_variable_the_expected_value_and_the_value():
    with pytest.raises(ExerciseCheckError) as raised:
        check_close("share_10_steps", 0.9, 0.42, atol=0.05, hint="did you use 10 sampler steps?")
    message = str(raised.value)
    assert message == "`share_10_steps` should be about 0.42 (within 0.05) but is 0.9: did you use 10 sampler steps?"


@pytest.mark.parametrize("value", [0.42, 0.44, np.float32(0.40), torch.tensor(0.43), torch.tensor([0.42])])
def test_check_close_passes_within_the_tolerance(value):
    assert check_close("share", value, 0.42, atol=0.025) is None


def test_check_close_uses_the_relative_tolerance():
    check_close("fid", 105.0, 100.0, atol=0.0, rtol=0.05)
    with pytest.raises(ExerciseCheckError, match="within 5"):
        check_close("fid", 106.0, 100.0, atol=0.0, rtol=0.05)


def test_check_close_on_tensors_reports_the_worst_entry():
    expected = torch.zeros(2, 3)
    value = expected.clone()
    value[1, 2] = 0.5
    with pytest.raises(ExerciseCheckError) as raised:
        check_close("x0_hat", value, expected, atol=1e-3)
    message = str(raised.value)
    assert "`x0_hat`" in message and "1 of 6 entries" in message and "(1, 2)" in message and "0.5" in message
    check_close("x0_hat", value, value.clone().double(), atol=1e-6)


def test_check_close_checks_the_shape_first():
    with pytest.raises(ExerciseCheckError, match=r"`eps` should have shape \(2, 3\) but has shape \(3, 2\)"):
        check_close("eps", torch.zeros(3, 2), torch.zeros(2, 3))


@pytest.mark.parametrize("value, phrase", [(None, "is None; did your code `return`"), ("0.42", "should be a number"),
                                          (float("nan"), "NaN"), (torch.zeros(3), "single number")])
def test_check_close_explains_values_of_the_wrong_kind(value, phrase):
    with pytest.raises(ExerciseCheckError, match=phrase):
        check_close("share", value, 0.42)


def test_check_shape():
    check_shape("batch", torch.zeros(8, 1, 28, 28), (8, 1, 28, 28))
    check_shape("batch", torch.zeros(5, 1, 28, 28), (None, 1, 28, 28))
    with pytest.raises(ExerciseCheckError, match=r"`batch` should have shape \(any, 1, 28, 28\) but has shape \(5, 28, 28\)"):
        check_shape("batch", torch.zeros(5, 28, 28), (None, 1, 28, 28))
    with pytest.raises(ExerciseCheckError, match=r"`batch` should be a tensor of shape \(3,\) but is a list"):
        check_shape("batch", [1, 2, 3], (3,))
    with pytest.raises(ValueError, match="shape"):
        check_shape("batch", torch.zeros(3), (-1,))


def test_check_range():
    check_range("share", 0.0, 0.0, 1.0)
    check_range("pixels", torch.rand(4, 4) * 2 - 1, -1, 1)
    with pytest.raises(ExerciseCheckError, match="`share` should be between 0 and 1 but is 1.5"):
        check_range("share", 1.5, 0, 1)
    with pytest.raises(ExerciseCheckError, match=r"2 of 3 are not \(smallest -1, largest 1.2\)"):
        check_range("pixels", torch.tensor([-1.0, 0.5, 1.2]), 0, 1)
    with pytest.raises(ExerciseCheckError, match="NaN"):
        check_range("pixels", torch.tensor([0.5, float("nan")]), 0, 1)


@pytest.mark.parametrize("call, parameter", [
    (lambda: check_close("x", 1.0, 1.0, atol=-1), "atol"),
    (lambda: check_close("x", 1.0, 1.0, rtol=float("nan")), "rtol"),
    (lambda: check_range("x", 1.0, 2.0, 1.0), "low must be <= high"),
    (lambda: check_range("x", 1.0, "0", 1.0), "low"),
])
def test_bad_arguments_raise_value_error_naming_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()


# --------------------------------------------------------------------------------------------------
# quizzes
# --------------------------------------------------------------------------------------------------

QUESTION = ("What does a diffusion model start from?", ["A black image", "Pure Gaussian noise", "A training image"], 1,
            "Sampling starts from x_T ~ N(0, I).")


def test_static_quiz_prints_the_question_the_options_and_the_answer(capsys):
    quiz(*QUESTION, static=True)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "Quick check: What does a diffusion model start from?",
        "  (a) A black image",
        "  (b) Pure Gaussian noise",
        "  (c) A training image",
        "Answer: (b) Pure Gaussian noise. Sampling starts from x_T ~ N(0, I).",
    ]


def test_quiz_falls_back_to_static_text_outside_a_kernel(capsys):
    """pytest is not a Jupyter kernel, so no frontend could show the widget: the quiz is printed."""
    quiz(*QUESTION)
    assert "Answer: (b) Pure Gaussian noise" in capsys.readouterr().out


class FakeKernelShell:
    kernel = object()  # what ipykernel's shell has and a plain IPython terminal has not


def test_quiz_shows_the_widget_in_a_kernel(monkeypatch, capsys):
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    quiz(*QUESTION)
    assert len(shown) == 1 and isinstance(shown[0], homework._QuizDisplay)
    assert capsys.readouterr().out == ""


def test_quiz_falls_back_to_static_text_in_a_kernel_without_ipywidgets(monkeypatch, capsys):
    import sys

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    quiz(*QUESTION)
    assert "Answer: (b) Pure Gaussian noise" in capsys.readouterr().out


@pytest.mark.parametrize("answer_index", [3, -1, 1.0, True, "1"])
def test_quiz_refuses_an_answer_index_outside_the_options(answer_index):
    with pytest.raises(ValueError, match=r"answer_index must be an integer in \[0, 2\]"):
        quiz(QUESTION[0], QUESTION[1], answer_index, QUESTION[3], static=True)


@pytest.mark.parametrize("question, options", [("", ["a", "b"]), ("Q?", ["only one"]), ("Q?", "ab"), ("Q?", ["a", "a"])])
def test_quiz_refuses_bad_questions_and_options(question, options):
    with pytest.raises(ValueError, match="question|options"):
        quiz(question, options, 0, "", static=True)


def test_quiz_widget_gives_feedback():
    form = quiz_widget(*QUESTION)
    title, choices, buttons, feedback = form.children
    check, reveal = buttons.children
    assert "What does a diffusion model start from?" in title.value
    assert list(choices.options) == QUESTION[1] and choices.value is None
    check.click()
    assert "Pick an answer" in feedback.value
    choices.value = "A black image"
    check.click()
    assert "Not quite" in feedback.value and "x_T" not in feedback.value, "a wrong choice must not give the answer away"
    choices.value = "Pure Gaussian noise"
    check.click()
    assert "Right" in feedback.value and "x_T ~ N(0, I)" in feedback.value
    reveal.click()
    assert "Answer: (b) Pure Gaussian noise" in feedback.value


def test_quiz_display_carries_static_fallbacks_for_renderers_without_widgets():
    display = homework._QuizDisplay(quiz_widget(*QUESTION), homework._validated(*QUESTION))
    bundle = display._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == quiz_text(*QUESTION)
    assert "<details>" in bundle["text/html"] and "Pure Gaussian noise" in bundle["text/html"]


def test_quiz_html_escapes_the_text():
    q = homework._validated("Is 1 < 2 & 3 > 2?", ["<b>yes</b>", "no"], 0, "")
    assert "<b>yes</b>" not in homework._quiz_html(q) and "&lt;b&gt;yes" in homework._quiz_html(q)


def test_course_quiz_covers_the_course_and_is_valid(capsys):
    assert sorted(COURSE_QUIZ) == list(range(1, len(COURSE_QUIZ) + 1))
    text = " ".join(q.question.lower() for questions in COURSE_QUIZ.values() for q in questions)
    for topic in ("start from", "small steps", "unet", "noise schedule", "latent", "guidance"):
        assert topic in text, f"no review question about {topic!r}"
    for number, questions in COURSE_QUIZ.items():
        assert questions, f"notebook {number} has no review questions"
        for q in questions:
            quiz(*q, static=True)
            assert f"Answer: ({'abcd'[q.answer_index]})" in capsys.readouterr().out
    answers = [q.answer_index for questions in COURSE_QUIZ.values() for q in questions]
    assert len(set(answers)) >= 3, "vary the position of the right answer"


def test_review_shows_a_notebooks_questions_and_refuses_unknown_notebooks(capsys):
    homework.review(3, static=True)
    assert capsys.readouterr().out.count("Quick check:") == len(COURSE_QUIZ[3])
    with pytest.raises(ValueError, match="notebook must be one of"):
        homework.review(99, static=True)


def test_check_close_accepts_equal_infinities_and_rejects_opposite_ones():
    import math

    check_close("x", math.inf, math.inf)
    check_close("x", np.array([1.0, -math.inf]), np.array([1.0, -math.inf]))
    with pytest.raises(AssertionError):
        check_close("x", -math.inf, math.inf)
