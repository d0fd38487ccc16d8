"""Named errors of the library.

Each error carries a catalogue key and its parameters, so that the CLI and the web app can say it in
the user's language; ``str(error)`` gives the English text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VoronkaError(Exception):
    """Something the user can fix: bad input, an unknown name, an impossible action."""

    key: ClassVar[str] = "error.generic"

    def __init__(self, **params: Any) -> None:
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str) -> str:
        from voronka.i18n import translate

        return translate(self.key, lang, **self.params)


class NotFound(VoronkaError):
    """A pipeline, stage, deal or other named thing does not exist."""

    key = "error.not_found"


class PipelineNotFound(NotFound):
    """No pipeline of that name."""

    key = "error.pipeline_not_found"


class PipelineRequired(VoronkaError):
    """The account has several pipelines and the command must be told which."""

    key = "error.pipeline_required"


class NoPipeline(VoronkaError):
    """The database has no pipeline yet."""

    key = "error.no_pipeline"


class StageNotFound(NotFound):
    """No stage of that name in the pipeline."""

    key = "error.stage_not_found"


class DealNotFound(NotFound):
    """No deal with that id."""

    key = "error.deal_not_found"


class InvalidPipeline(VoronkaError):
    """A pipeline definition that cannot work (fewer than two stages, duplicate names)."""

    key = "error.invalid_pipeline"


class PipelineExists(VoronkaError):
    """A pipeline of that name exists with other stages."""

    key = "error.pipeline_exists"


class InvalidTransition(VoronkaError):
    """A move, win, loss or reopen that the deal's state does not allow."""

    key = "error.invalid_transition"


class DealClosed(InvalidTransition):
    """The deal is won or lost; reopen it first."""

    key = "error.deal_closed"


class StageOfOtherPipeline(InvalidTransition):
    """The stage belongs to another pipeline."""

    key = "error.stage_other_pipeline"


class LossReasonRequired(InvalidTransition):
    """A deal can only be lost with a reason."""

    key = "error.loss_reason_required"


class InvalidValue(VoronkaError):
    """A value (date, amount, option) that cannot be read."""

    key = "error.invalid_value"


class UnknownName(InvalidValue):
    """A manager or source name that the account does not know, where a typo must not create one."""

    key = "error.unknown_name"


class InvalidChoice(InvalidValue):
    """An option value outside its fixed choices (``--format nonsense``)."""

    key = "error.invalid_choice"


class InvalidQuery(VoronkaError):
    """A report request whose options do not fit together."""

    key = "error.invalid_query"


class DateRangeReversed(InvalidQuery):
    """A range whose start is not before its end (the end is exclusive)."""

    key = "error.date_range_reversed"


class ImportFailed(VoronkaError):
    """A file that cannot be read at all; nothing was imported."""

    key = "error.import_failed"


class ConnectionNotFound(NotFound):
    """No CRM connection of that name."""

    key = "error.connection_not_found"


class ConnectorFailed(VoronkaError):
    """A CRM answered with something the sync cannot use, or not at all; what was synced stays."""

    key = "error.connector_failed"


class ConnectorAuthFailed(ConnectorFailed):
    """The CRM refused the stored credentials."""

    key = "error.connector_auth"


class PermissionRefused(ConnectorFailed):
    """The CRM took the credentials but refused one method: the token lacks a scope or a role."""

    key = "error.connector_failed"


class NotReceivable(VoronkaError):
    """An alert switched on for someone whose role never receives it (a team digest for a manager)."""

    key = "error.not_receivable"


class RoleNotReceivable(NotReceivable):
    key = "error.not_receivable_role"


class DealExists(VoronkaError):
    """A deal with that external id is already there: update it instead of creating another."""

    key = "error.deal_exists"
