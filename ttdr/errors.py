"""User-facing errors: each says what went wrong and what to do about it.

The CLI prints `str(error)` without a traceback, so the message must stand on its own.
"""


class TtdrError(Exception):
    """Base class for errors a user can act on."""


class InvalidQuestionError(TtdrError, ValueError):
    pass


class RunNotFoundError(TtdrError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "run not found"


class DocsPathError(TtdrError, FileNotFoundError):
    pass


class RetrievalUnavailableError(TtdrError):
    """No search backend can answer: the web failed and nothing is indexed locally."""


class ModelUnavailableError(TtdrError):
    """The model could not be found, downloaded or loaded."""


class RemoteServerError(ModelUnavailableError):
    """A remote model server (`ttdr serve`, an OpenAI-compatible one) could not be used: down,
    too slow, refusing, or answering nonsense, after the retries; the message names the URL."""


class TrainingDataError(TtdrError, ValueError):
    """`ttdr train a2d` found no usable records where it was pointed."""


class RunStopped(TtdrError):
    """A caller asked a running research to stop (the UI's Stop button); like Ctrl-C, the run
    is kept as `interrupted` with everything written so far."""


class RunNotResumableError(TtdrError):
    """Only runs that stopped early (interrupted, failed, killed) can be resumed."""


class PlanAwaitingReview(TtdrError):
    """A run asked to have its plan reviewed (`review_plan`) stopped after planning, as it
    should: `Researcher.run` cannot return a report yet. `run_id` says which run waits."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class HistoryDatabaseError(TtdrError):
    """The history database cannot be used as it is (damaged, not writable, a disk problem,
    or written by a newer ttdr); the message names the file and what to do, and nothing in the
    file was changed."""


class IndexDatabaseError(TtdrError):
    """The local document index cannot be used as it is (damaged, not writable, a full disk);
    the message names the file and what to do, and nothing in the file was changed."""


class OutputPathError(TtdrError):
    """An output file (`--out`) cannot be written where it was asked: a missing folder, a
    folder given for a file, no permission. Checked before any work starts."""


class OutputWriteError(TtdrError):
    """Writing an output file failed part-way (a full disk, an I/O error); a file that was
    there before is left as it was."""


class ExportFormatError(OutputPathError):
    """An export format ttdr cannot write, or a binary one (PDF, DOCX) bound for a terminal;
    a usage error like a bad `--out`, refused before any work starts."""
