"""What every schema file shares: strict models, named sources, and unconfirmed entries with a reason."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Entry", "Name", "Schema", "Strict"]

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Strict(BaseModel):
    """A frozen model that refuses keys it does not know: a typo in a schema file is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(Strict):
    """A field or column: which source confirms it, or why it is kept although none does."""

    source: str | None = None
    confirmed: bool = True
    why: str = ""

    @model_validator(mode="after")
    def _explain_unconfirmed(self) -> Self:
        if not self.confirmed and not self.why:
            raise ValueError("an unconfirmed entry needs a 'why': what it is needed for and what is missing")
        return self


class Schema(Strict):
    """One entity or table file: its public sources by name, and the default source of its entries."""

    sources: dict[str, str] = Field(min_length=1)
    source: str

    def check_sources(self, entries: dict[str, Entry]) -> None:
        """Every entry names a source this file lists (or leaves the file's default)."""
        if self.source not in self.sources:
            raise ValueError(f"default source {self.source!r} is not among the sources")
        for name, entry in entries.items():
            if entry.source is not None and entry.source not in self.sources:
                raise ValueError(f"{name}: source {entry.source!r} is not among the sources")
        for name, url in self.sources.items():
            if not url.startswith("https://"):
                raise ValueError(f"source {name!r} is not a public https URL: {url!r}")
