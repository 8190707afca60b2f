"""What every command of one `groundwork` invocation shares: the runtime's
settings and the plan built from them, each loaded once (and only when a
command needs it), handed down through click's context."""

from __future__ import annotations

from functools import cached_property

import click
from pydantic import ValidationError

from groundwork_cli.runtime.jaeger import JaegerNotFound
from groundwork_cli.runtime.plan import Plan, build
from groundwork_cli.runtime.settings import RuntimeSettings
from groundwork_shared.settings import describe_errors


class Session:
    @cached_property
    def settings(self) -> RuntimeSettings:
        try:
            return RuntimeSettings()
        except ValidationError as error:
            raise click.ClickException(describe_errors(RuntimeSettings, error)) from error

    @cached_property
    def plan(self) -> Plan:
        try:
            return build(self.settings)
        except (JaegerNotFound, ValueError) as error:  # ValueError: an override mesh.yaml refuses
            raise click.ClickException(str(error)) from error


pass_session = click.make_pass_decorator(Session, ensure=True)


def current() -> Session:
    """The running command's session, for code that is not a command (defaults)."""
    return click.get_current_context().ensure_object(Session)
