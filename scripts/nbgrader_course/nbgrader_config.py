"""nbgrader configuration of the diffusion course (copied into the course directory by
scripts/make_student_versions.py). Run nbgrader commands in that folder; see docs/INSTRUCTORS.md."""
import logging
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # course_grading.py, beside this file

from course_grading import DescribeImages, HideHiddenTests, MathToMathML, RestoreHiddenTests  # noqa: E402
import nbgrader  # noqa: E402
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades,  # noqa: E402
                                    OverwriteKernelspec)
from sqlalchemy.exc import SAWarning  # noqa: E402

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "diffusion-course"
# The course marks solutions and hidden tests with nbgrader's text markers; make_student_versions.py
# adds the cell metadata, so the metadata is enforced (the default).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# `nbgrader zip_collect NN_name` (submissions downloaded from an LMS): files in
# downloaded/NN_name/archive/ named STUDENTID_NN_name.ipynb (or zip files of them).
c.FileNameCollectorPlugin.named_regexp = r".*[/\\](?P<student_id>[^/\\]+?)_(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"

# Autograding executes whole notebooks; notebooks 03-07 train or sample for minutes on a CPU.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# Kernels talk to nbgrader over encrypted ZeroMQ (CurveZMQ) where the kernel supports it, as
# ipykernel does: ipykernel warns about plain TCP.
c.KernelManager.transport_encryption = "auto"

# Autograde: stock OverwriteCells warns "checksum has changed" for every test cell with hidden
# tests (the student version lacks them); RestoreHiddenTests warns only when a student changed one.
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreHiddenTests,
                                      CheckCellMetadata]

# Feedback: no hidden tests, formulas as MathML (no MathJax from a CDN), figures with alternative text.
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests, MathToMathML,
                                    DescribeImages]
c.HTMLExporter.template_name = "course_feedback"
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(HERE, "templates"),
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]

# Two messages nbgrader 0.9 prints that are not problems:
# - SQLAlchemy 2's SAWarning "Object of type <SubmittedAssignment> not in session, add operation along
#   ... will not proceed", three per student in autograde: nbgrader's gradebook relies on SQLAlchemy 1's
#   backref cascade and then adds the objects itself; grades are stored correctly.
warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session", category=SAWarning)


class NotAProblem(logging.Filter):
    """- zip_collect's "Directory not found. Creating: ..." for each folder it makes, logged as a warning."""

    def filter(self, record):
        return not record.getMessage().startswith("Directory not found. Creating: ")


logging.getLogger("ZipCollectApp").addFilter(NotAProblem())
