"""Exercises and quick checks: self-checks that explain what is wrong, and multiple-choice quizzes.

The visible check under an exercise should tell a student *what* is off, not just fail. Compare

    AssertionError
    ExerciseCheckError: `share_10_steps` should be about 0.42 (within 0.05) but is 0.9: did you ...?

``check_close``, ``check_shape`` and ``check_range`` raise :class:`ExerciseCheckError` (an
``AssertionError``, so nbgrader and pytest count it as a failed test) with a message that names the
variable, the expected value and the value found, plus an optional hint. They return ``None`` when
the check passes.

``quiz`` shows one multiple-choice question as an ipywidgets form (choose, then *Check*); where widgets
cannot be used (no kernel, ipywidgets missing, or ``static=True``) it prints the question, the options,
the answer and the explanation as plain text. ``review(n)`` shows the review questions of notebook
``n`` from :data:`COURSE_QUIZ`.

Bad arguments (a negative tolerance, an ``answer_index`` outside the options) raise ``ValueError``
naming the parameter and the allowed range, like the rest of ``course_utils``; a ``name`` that is not a
string, or a ``static`` that is not a bool or None, raises ``TypeError``.
"""
from __future__ import annotations

import html
import math
import numbers
from typing import Any, NamedTuple, Sequence

__all__ = [
    "ExerciseCheckError", "check_close", "check_shape", "check_range",
    "QuizQuestion", "quiz", "quiz_text", "quiz_widget", "review", "COURSE_QUIZ",
]


class ExerciseCheckError(AssertionError):
    """An exercise's self-check failed; the message names the variable, what was expected and what was found."""


# --------------------------------------------------------------------------------------------------
# self-checks
# --------------------------------------------------------------------------------------------------

def _fail(message: str, hint: str | None) -> None:
    if hint:
        message = f"{message} {hint}" if message.endswith(("?", ".")) else f"{message}: {hint}"
    raise ExerciseCheckError(message)


def _describe(value: Any) -> str:
    """A short description of a value for an error message: numbers rounded, tensors by shape and dtype."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        kind = type(value).__name__
        dtype = getattr(value, "dtype", None)
        if len(tuple(shape)) == 0:
            return _describe(value.item())
        return f"a {kind} of shape {tuple(shape)}" + (f" and dtype {dtype}" if dtype is not None else "")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be the variable's name as the student knows it (a string such as "
                        f"'share_10_steps'), got {name!r}")


def _as_float_array(name: str, value: Any, hint: str | None):
    """``value`` as a float64 numpy array, or an ExerciseCheckError saying what it is instead."""
    import numpy as np

    if value is None:
        _fail(f"`{name}` is None; did your code `return` (or assign) a value?", hint)
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        _fail(f"`{name}` should be a number or a tensor but is {_describe(value)}", hint)
    try:
        if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU or with gradients
            value = value.detach().cpu().double().numpy()
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(f"`{name}` should be a number or a tensor but is {type(value).__name__} {_describe(value)}", hint)


def check_close(name: str, value: Any, expected: Any, atol: float = 1e-6, rtol: float = 0.0,
                hint: str | None = None) -> None:
    """Check that ``value`` is within ``atol + rtol * |expected|`` of ``expected`` (numbers, arrays or tensors).

    ``name`` is how the student knows the variable (e.g. ``"share_10_steps"``); ``hint`` is appended to
    the message, e.g. ``"did you use 10 sampler steps?"``. Arrays and tensors must have the shape of
    ``expected`` (checked first), and the message reports the largest difference and where it is.
    """
    _check_name(name)
    if not isinstance(atol, numbers.Real) or isinstance(atol, bool) or not atol >= 0:
        raise ValueError(f"atol must be a number >= 0, got {atol!r}")
    if not isinstance(rtol, numbers.Real) or isinstance(rtol, bool) or not rtol >= 0:
        raise ValueError(f"rtol must be a number >= 0, got {rtol!r}")
    import numpy as np

    want = _as_float_array("expected", expected, None)
    got = _as_float_array(name, value, hint)
    if want.ndim == 0:
        if got.size != 1:
            _fail(f"`{name}` should be a single number about {float(want):.4g} but is {_describe(value)}", hint)
        got_number, want_number = float(got.reshape(())), float(want)
        if math.isnan(got_number):
            _fail(f"`{name}` should be about {want_number:.4g} but is NaN (not a number)", hint)
        tolerance = atol + rtol * abs(want_number)
        if got_number != want_number and not abs(got_number - want_number) <= tolerance:  # == : equal infinities
            _fail(f"`{name}` should be about {want_number:.4g} (within {tolerance:.2g}) but is {got_number:.4g}", hint)
        return None
    check_shape(name, got, want.shape, hint=hint)
    if np.isnan(got).any():
        _fail(f"`{name}` contains NaN (not a number) at {int(np.isnan(got).sum())} of {got.size} entries", hint)
    difference = np.abs(got - want)
    tolerance = atol + rtol * np.abs(want)
    bad = ~((difference <= tolerance) | (got == want))  # got == want: equal infinities
    if bad.any():
        worst = np.unravel_index(int(np.argmax(np.where(bad, difference, -1.0))), got.shape)
        _fail(f"`{name}` should match the expected values within {atol:.2g}"
              + (f" + {rtol:.2g} x |expected|" if rtol else "")
              + f", but {int(bad.sum())} of {got.size} entries differ; the largest difference is "
              f"{float(difference[worst]):.4g} at index {tuple(int(i) for i in worst)} "
              f"(expected {float(want[worst]):.4g}, got {float(got[worst]):.4g})", hint)
    return None


def check_shape(name: str, tensor: Any, shape: Sequence[int | None], hint: str | None = None) -> None:
    """Check that ``tensor.shape`` equals ``shape``; ``None`` in ``shape`` matches any size."""
    _check_name(name)
    try:
        expected = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of sizes (integers or None), got {shape!r}") from None
    if not all(size is None or (isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 0)
               for size in expected):
        raise ValueError(f"shape must contain sizes >= 0 or None, got {shape!r}")
    wanted = "(" + ", ".join("any" if s is None else str(s) for s in expected) + ("," if len(expected) == 1 else "") + ")"
    if tensor is None:
        _fail(f"`{name}` is None but should have shape {wanted}; did your code `return` a value?", hint)
    actual = getattr(tensor, "shape", None)
    if actual is None:
        _fail(f"`{name}` should be a tensor of shape {wanted} but is a {type(tensor).__name__} "
              f"({_describe(tensor)}), which has no shape", hint)
    actual = tuple(int(size) for size in actual)
    if len(actual) != len(expected) or any(w is not None and w != a for w, a in zip(expected, actual)):
        _fail(f"`{name}` should have shape {wanted} but has shape {actual}", hint)
    return None


def check_range(name: str, value: Any, low: float, high: float, hint: str | None = None) -> None:
    """Check that ``value`` (a number, or every entry of an array or tensor) lies in ``[low, high]``."""
    _check_name(name)
    for label, bound in (("low", low), ("high", high)):
        if not isinstance(bound, numbers.Real) or isinstance(bound, bool) or math.isnan(bound):
            raise ValueError(f"{label} must be a number, got {bound!r}")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")
    import numpy as np

    got = _as_float_array(name, value, hint)
    if got.size == 0:
        _fail(f"`{name}` is empty; expected values in [{low:.4g}, {high:.4g}]", hint)
    if np.isnan(got).any():
        _fail(f"`{name}` should be in [{low:.4g}, {high:.4g}] but contains NaN (not a number)", hint)
    smallest, largest = float(got.min()), float(got.max())
    if smallest >= low and largest <= high:
        return None
    if got.size == 1:
        _fail(f"`{name}` should be between {low:.4g} and {high:.4g} but is {smallest:.4g}", hint)
    outside = int(((got < low) | (got > high)).sum())
    _fail(f"every entry of `{name}` should be between {low:.4g} and {high:.4g}, but {outside} of {got.size} "
          f"are not (smallest {smallest:.4g}, largest {largest:.4g})", hint)


# --------------------------------------------------------------------------------------------------
# quizzes
# --------------------------------------------------------------------------------------------------

class QuizQuestion(NamedTuple):
    """One multiple-choice question: ``quiz(*question)`` shows it."""

    question: str
    options: tuple[str, ...]
    answer_index: int
    explanation: str


def _validated(question: str, options: Sequence[str], answer_index: int, explanation: str) -> QuizQuestion:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    if isinstance(options, str) or not isinstance(options, Sequence):
        raise ValueError(f"options must be a list of at least 2 strings, got {options!r}")
    options = tuple(options)
    if len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise ValueError(f"options must be a list of at least 2 non-empty strings, got {list(options)!r}")
    if len(set(options)) != len(options):
        raise ValueError(f"options must be different from each other, got {list(options)!r}")
    if not isinstance(answer_index, numbers.Integral) or isinstance(answer_index, bool) \
            or not 0 <= answer_index < len(options):
        raise ValueError(f"answer_index must be an integer in [0, {len(options) - 1}] "
                         f"(one of the {len(options)} options), got {answer_index!r}")
    if not isinstance(explanation, str):
        raise ValueError(f"explanation must be a string, got {explanation!r}")
    return QuizQuestion(question.strip(), options, int(answer_index), explanation.strip())


def _letter(index: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[index] if index < 26 else str(index + 1)


def quiz_text(question: str, options: Sequence[str], answer_index: int, explanation: str = "") -> str:
    """The static form of a quiz: question, lettered options, then the answer and the explanation."""
    q = _validated(question, options, answer_index, explanation)
    lines = [f"Quick check: {q.question}"]
    lines += [f"  ({_letter(i)}) {option}" for i, option in enumerate(q.options)]
    answer = f"Answer: ({_letter(q.answer_index)}) {q.options[q.answer_index]}"
    lines.append(f"{answer}. {q.explanation}" if q.explanation else answer)
    return "\n".join(lines)


def _quiz_html(q: QuizQuestion) -> str:
    """HTML fallback for renderers without widgets (GitHub, nbviewer): the answer is folded away."""
    items = "".join(f"<li>{html.escape(option)}</li>" for option in q.options)
    answer = html.escape(f"({_letter(q.answer_index)}) {q.options[q.answer_index]}")
    explanation = f" {html.escape(q.explanation)}" if q.explanation else ""
    return (f"<div><p><b>Quick check:</b> {html.escape(q.question)}</p><ol type=\"a\">{items}</ol>"
            f"<details><summary>Show the answer</summary><p>{answer}.{explanation}</p></details></div>")


# ipywidgets draws each radio option as one line of fixed height; the course's options are sentences,
# so in a quiz they wrap within the notebook's width instead of running past its right edge.
_QUIZ_STYLE = ("<style>.course-quiz .widget-radio-box label {height: auto; line-height: 1.4; "
               "white-space: normal; margin-bottom: 4px}</style>")


def quiz_widget(question: str, options: Sequence[str], answer_index: int, explanation: str = ""):
    """The interactive form: a ``VBox`` of the question, ``RadioButtons``, a *Check* button and feedback.

    The feedback is an ``HTML`` widget (``widget.children[-1]``); clicking *Check* with the right option
    selected shows the explanation, a wrong one says so without giving the answer away.
    """
    import ipywidgets as widgets

    q = _validated(question, options, answer_index, explanation)
    title = widgets.HTML(_QUIZ_STYLE + f"<b>Quick check:</b> {html.escape(q.question)}")
    choices = widgets.RadioButtons(options=list(q.options), value=None, layout=widgets.Layout(width="auto"))
    check = widgets.Button(description="Check", button_style="primary")
    reveal = widgets.Button(description="Show the answer")
    feedback = widgets.HTML("")

    def on_check(_button=None):
        if choices.index is None:
            feedback.value = "Pick an answer first."
        elif choices.index == q.answer_index:
            feedback.value = f"<span style='color:green'>&#10004; Right.</span> {html.escape(q.explanation)}"
        else:
            feedback.value = (f"<span style='color:#b00'>&#10008; Not quite:</span> "
                              f"&ldquo;{html.escape(q.options[choices.index])}&rdquo; is not it. Try again.")

    def on_reveal(_button=None):
        feedback.value = (f"Answer: ({_letter(q.answer_index)}) {html.escape(q.options[q.answer_index])}. "
                          f"{html.escape(q.explanation)}")

    check.on_click(on_check)
    reveal.on_click(on_reveal)
    form = widgets.VBox([title, choices, widgets.HBox([check, reveal]), feedback])
    form.add_class("course-quiz")
    return form


class _QuizDisplay:
    """Displays the widget where a frontend can show it, and static HTML / text where it cannot."""

    def __init__(self, widget, q: QuizQuestion):
        self.widget, self.q = widget, q

    def _repr_mimebundle_(self, **kwargs):
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = quiz_text(*self.q)
        bundle["text/html"] = _quiz_html(self.q)
        return bundle


def _widgets_available() -> bool:
    """True in a Jupyter kernel with ipywidgets installed (a frontend may render the widget)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def quiz(question: str, options: Sequence[str], answer_index: int, explanation: str = "",
         static: bool | None = None) -> None:
    """Show a multiple-choice quick check.

    In a Jupyter kernel with ipywidgets: radio buttons, a *Check* button and feedback (with static HTML
    in the same output, so the stored notebook still shows the question on GitHub or nbviewer).
    Otherwise, or with ``static=True``: prints the question, the options, the answer and the
    explanation. ``answer_index`` counts from 0.
    """
    q = _validated(question, options, answer_index, explanation)
    if static is not None and not isinstance(static, bool):
        raise TypeError(f"static must be True, False or None (None: widgets where they can be shown), got {static!r}")
    if static is None:
        static = not _widgets_available()
    if static:
        print(quiz_text(*q))
        return None
    from IPython.display import display

    display(_QuizDisplay(quiz_widget(*q), q))
    return None


def review(notebook: int, static: bool | None = None) -> None:
    """Show every review question of notebook ``notebook`` (its number, e.g. ``3``) from COURSE_QUIZ."""
    if isinstance(notebook, bool) or not isinstance(notebook, numbers.Integral) or notebook not in COURSE_QUIZ:
        raise ValueError(f"notebook must be one of {sorted(COURSE_QUIZ)}, got {notebook!r}")
    for question in COURSE_QUIZ[notebook]:
        quiz(*question, static=static)


# --------------------------------------------------------------------------------------------------
# the course's review questions, by notebook number
# --------------------------------------------------------------------------------------------------

COURSE_QUIZ: dict[int, tuple[QuizQuestion, ...]] = {
    1: (
        QuizQuestion(
            "What does a diffusion model start from when it generates a new image?",
            ("A blank, all-black image", "A random image from the training set", "Pure Gaussian noise",
             "A blurred version of the image it will produce"),
            2,
            "Sampling starts from x_T ~ N(0, I), pure noise, and removes a little of the predicted noise at "
            "every step. Notebook 02 shows why: the forward process ends at (very nearly) that distribution, how nearly "
            "depending on the schedule.",
        ),
        QuizQuestion(
            "The toy loop subtracted a fresh `torch.randn_like(toy_image)` at every step. Why can that never produce a digit?",
            ("The steps are too small", "The new noise is independent of the image, so it only adds variance",
             "It needs a GPU", "It would work with 1000 steps"),
            1,
            "Each draw is independent of the image, and variances add: after K steps of size s every pixel "
            "is noise with variance 1 + K s^2. Denoising must subtract the noise that is in the image, so it "
            "needs a noise predictor.",
        ),
        QuizQuestion(
            "Why do samplers take many small steps rather than one big one?",
            ("From heavy noise a network can only predict a blurry average of the digits that fit; each small "
             "step commits to a little detail and asks again from a cleaner image",
             "Each small step uses less memory",
             "A single step is mathematically impossible", "Small steps make the image sharper by upsampling it"),
            0,
            "Under a squared loss the best prediction of x_0 from x_t is the average of every image that could "
            "have produced x_t, E[x_0 | x_t]: from pure noise that is a blur of all digits (notebook 01 shows it "
            "with the ideal denoiser of 1,000 digits, notebook 03 with the shipped model's x0-hat). A small step "
            "moves only part way towards it; the next prediction sees a less noisy image, which fewer digits fit, "
            "and is sharper. (A trained network's mistakes do not average out over the steps: its errors at nearby "
            "inputs are alike. Stochastic samplers correct errors another way: each step adds "
            "fresh noise and removes a matching extra amount, a Langevin step that pulls a sample an error has "
            "pushed off course back towards the right distribution (notebook 04).)",
        ),
    ),
    2: (
        QuizQuestion(
            "What does the noise schedule control?",
            ("The learning rate of training", "The number of channels of the UNet",
             "How many images are in a batch",
             "How much of the image and how much noise x_t contains at each step t (alpha_bar_t)"),
            3,
            "The betas fix alpha_bar_t = prod(1 - beta_s): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. "
            "The schedule decides how quickly the signal fades and where the steps are spent.",
        ),
        QuizQuestion(
            "Training needs x_t for random t. Why don't we have to run t noising steps to get it?",
            ("We do: training runs all t steps for every image",
             "q(x_t | x_0) is Gaussian in closed form, so x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps in one step",
             "Because the network ignores t", "Because the noise is the same at every step"),
            1,
            "Gaussian steps compose into one Gaussian, so q_sample jumps straight to any t; notebook 02 "
            "checks this against step-by-step chains.",
        ),
    ),
    3: (
        QuizQuestion(
            "The course's UNet predicts v. What can a sampler get from its output v_hat and x_t?",
            ("Only the noise eps", "Only the clean image x_0",
             "Both: x0_hat = a x_t - s v_hat and eps_hat = s x_t + a v_hat, with a^2 + s^2 = 1",
             "Neither: v is only a training trick and must be converted by a second network"),
            2,
            "x_t = a x_0 + s eps is linear in x_0 and eps, so predicting eps, x_0 or v is the same model in "
            "three coordinates (a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t)); they differ in how errors "
            "are magnified: v divides by nothing (Salimans & Ho 2022).",
        ),
        QuizQuestion(
            "Why is the timestep t an input of the network?",
            ("The same kind of image needs different answers at different noise levels, so the network must know the level",
             "To make the network bigger", "It is only used for logging", "Because the sampler runs backwards"),
            0,
            "A faint digit under a lot of noise and a clear digit with a whisper of noise call for very "
            "different predictions; the sinusoidal timestep embedding tells every block which t it is.",
        ),
    ),
    4: (
        QuizQuestion(
            "What do faster samplers such as DDIM or DPM-Solver change?",
            ("They retrain the network with fewer timesteps",
             "They take fewer, larger steps with the same trained noise predictor",
             "They use a smaller UNet", "They skip the noise and start from a training image"),
            1,
            "The network is the same; the sampler decides how to move from x_t to an earlier step. Better "
            "update rules follow the denoising path accurately with 10 to 50 network calls instead of 1000.",
        ),
    ),
    5: (
        QuizQuestion(
            "In latent diffusion, what turns the final latent back into an image?",
            ("The UNet", "The text encoder", "The noise scheduler", "The VAE's decoder"),
            3,
            "The VAE's encoder maps images to latents and its decoder maps latents back to pixels; the "
            "diffusion model only ever works on latents.",
        ),
        QuizQuestion(
            "Why is latent diffusion much faster than diffusion on pixels?",
            ("The UNet works on a small latent (4x64x64 for a 512x512x3 image, 48 times fewer numbers) at every step",
             "Latents need no sampling steps", "The VAE is run at every step instead of the UNet",
             "It uses lower numerical precision"),
            0,
            "The expensive part, the UNet, runs at every sampling step; on latents each call costs far less. "
            "The VAE decoder runs once at the end.",
        ),
    ),
    6: (
        QuizQuestion(
            "What does the classifier-free guidance scale w control?",
            ("The number of sampling steps", "The resolution of the image",
             "How far the prediction is pushed from the unconditional towards the prompt: eps_uncond + w (eps_cond - eps_uncond)",
             "The random seed of the starting noise"),
            2,
            "w = 1 is the plain conditional model; larger w follows the prompt more closely at the cost of "
            "variety (and, too large, of image quality). It needs two UNet evaluations per step.",
        ),
    ),
    7: (
        QuizQuestion(
            "In a Stable Diffusion pipeline, which part runs at every sampling step?",
            ("The tokenizer and text encoder", "The UNet noise predictor (twice per step with guidance)",
             "The VAE decoder", "The safety checker"),
            1,
            "The prompt is encoded once and the VAE decodes once at the end; the UNet runs at every step, "
            "which is why the number of steps sets the run time.",
        ),
    ),
    8: (
        QuizQuestion(
            "Flow matching trains on straight lines from each image to its noise. Why does one Euler step from "
            "pure noise still not give a sharp digit?",
            ("Euler's method is unstable on straight lines",
             "At sigma = 1 the network's velocity is the average over every image that could lie behind that "
             "noise, so one step lands on their blurry mean",
             "The UNet is too small to output a velocity", "The noise has to be clipped to [-1, 1] first"),
            1,
            "The network sees x_sigma, not the pair (x_0, eps) that made it; under a squared loss it learns "
            "E[eps - x_0 | x_sigma], whose x0-hat at sigma = 1 is the mean digit (exercise 2). The model's own "
            "paths bend (section 2), so a single step cuts the corner.",
        ),
        QuizQuestion(
            "How is notebook 04's DDIM related to the flow Euler sampler?",
            ("They are unrelated: DDIM needs a DDPM, Euler a flow model",
             "DDIM is Heun's method", "DDIM adds fresh noise at each step, Euler does not",
             "DDIM is Euler's method on the same straight path, in the coordinates y = x_t / (a + s), with the "
             "DDPM network's velocity eps-hat - x0-hat"),
            3,
            "Every DDPM point x_t is the straight path's point at sigma = s / (a + s), scaled by a + s; in those "
            "coordinates a DDIM step is y' = y + (sigma' - sigma)(eps-hat - x0-hat) exactly (section 5). The "
            "two models differ in what the network learned and where the steps are placed.",
        ),
        QuizQuestion(
            "What does Stable Diffusion 3's timestep shift (shift = 3) change?",
            ("Where the sampler's steps are placed: the same number of steps, moved towards high noise",
             "The training images", "The velocity target", "The number of network evaluations per step"),
            0,
            "sigma' = s sigma / (1 + (s - 1) sigma) maps the uniform grid to one with more steps near sigma = 1, "
            "where the layout of a large image is decided; the network and the number of steps are unchanged.",
        ),
    ),
    9: (
        QuizQuestion(
            "A new ControlNet's zero convolutions start with all weights and biases at zero. Why can it still learn?",
            ("It cannot: the zero convolutions are frozen and only the copied encoder trains",
             "The gradient of W h + b with respect to W is h, the copy's features, which are not zero; so the "
             "first optimizer step moves W off zero",
             "Adam adds noise to every parameter", "The UNet is unfrozen for the first steps"),
            1,
            "Zero weights give a zero output, not a zero gradient. After one step W is non-zero and gradients reach "
            "the copy too. Until then the model is exactly the text-to-image model (section 2).",
        ),
        QuizQuestion(
            "What does controlnet_conditioning_scale = 0 give?",
            ("An error", "Pure noise", "Exactly the text-to-image model: every residual is multiplied by 0",
             "The control image, decoded"),
            2,
            "The ControlNet still runs, but its residuals are scaled by 0 before the UNet adds them; the measured "
            "baseline of section 6 is this model.",
        ),
        QuizQuestion(
            "The training script drops half of the prompts to the empty prompt. What is that for?",
            ("To make training twice as fast",
             "So that the ControlNet must read the sketch to lower the loss, instead of relying on the prompt",
             "To train the text encoder", "Classifier-free guidance needs exactly 50%"),
            1,
            "With the prompt available the UNet already knows the digit's class; without it, only the control "
            "says what and where. Zhang et al. 2023 replace 50% of the prompts for the same reason.",
        ),
    ),
    10: (
        QuizQuestion(
            "Why can a reflowed model take one big Euler step where the flow model it came from cannot?",
            ("It has more parameters",
             "Its paths are nearly straight and walked at constant speed, so the velocity at the start already "
             "points at the end",
             "It samples with Heun's method", "It was trained on real images only"),
            1,
            "An Euler step follows the velocity at its start. The flow model's paths bend: from pure noise its "
            "velocity points at the mean digit (x0-hat at sigma = 1), so one step lands on a blur. Trained on the "
            "straight lines between the ODE's own pairs, the reflowed model's first velocity already points at "
            "the digit its path ends on (sections 1 and 4).",
        ),
        QuizQuestion(
            "What does reflow change in notebook 08's training recipe?",
            ("The loss: an L1 loss instead of the squared one", "The UNet's architecture",
             "The pairing of noise and images: each noise is paired with the image the flow model's ODE carries "
             "it to, instead of a random training image",
             "The noise levels: only sigma = 1 is trained"),
            2,
            "Loss, network and sampler stay; the coupling changes (Liu et al. 2022, algorithm 1). The ODE's paths "
            "never cross, so the straight lines between its pairs rarely do, and the marginal field of those lines "
            "bends far less.",
        ),
        QuizQuestion(
            "Lee et al. 2024 train the reflowed model with a U-shaped distribution of noise levels. Why?",
            ("Its loss is largest near both ends of the path, so those levels get more of the training",
             "It makes each training step cheaper", "Samplers never visit the middle of the path",
             "It is Stable Diffusion 3's logit-normal distribution"),
            0,
            "Near sigma = 1 the flow model predicted a blur where the pairs ask for one particular digit, and near "
            "sigma = 0 the network must tell which noise the pairing chose; the middle is easier. The logit-normal "
            "distribution does the opposite: it favours the middle.",
        ),
    ),
}

for _number, _questions in COURSE_QUIZ.items():  # the data must itself be valid quizzes
    for _question in _questions:
        _validated(*_question)
del _number, _questions, _question
