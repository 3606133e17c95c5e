"""``EntryRow.created``: ``dataclasses.replace(row, created_at=...)`` written out field by field
(it runs for each key a write stores), so it must keep every field, today's and any added."""

from __future__ import annotations

import dataclasses

from botwire.store._sqlbase import EntryRow


def test_created_is_replace_of_created_at_for_every_field() -> None:
    fields = dataclasses.fields(EntryRow)
    # every field a value of its own, none its default: a field created() forgot shows
    row = EntryRow(**{f.name: float(i + 10) for i, f in enumerate(fields)})
    moved = row.created(1.5)
    assert moved == dataclasses.replace(row, created_at=1.5)
    assert moved is not row and row.created_at != 1.5  # the row itself is left as it was
