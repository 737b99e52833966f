"""Errors of the contract layer (which imports nothing else of ours)."""

from __future__ import annotations


class ContractError(ValueError):
    """A value does not fit the modeld contract: unknown profile, wrong shape or width, unsafe pickle."""


class UnknownProfileError(ContractError, KeyError):
    """A contract profile id that is not defined."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown profile"
