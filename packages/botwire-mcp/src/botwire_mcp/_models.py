"""The tools' argument and result models (their input and output schemas)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

__all__ = [
    "AddedObservations",
    "AppendResult",
    "DeleteResult",
    "EntitiesOut",
    "Entity",
    "GetResult",
    "GraphOut",
    "ListResult",
    "ObservationAdd",
    "ObservationDelete",
    "Relation",
    "RelationsOut",
    "ResultsOut",
    "SetResult",
    "StatusOut",
    "TailResult",
]


class GetResult(BaseModel):
    namespace: str
    key: str
    found: bool
    value: Any = None
    version: int | None = None
    expires_at: float | None = Field(
        default=None, description="seconds since the epoch; null: never"
    )


class SetResult(BaseModel):
    namespace: str
    key: str
    version: int


class AppendResult(BaseModel):
    namespace: str
    key: str
    length: int


class TailResult(BaseModel):
    namespace: str
    key: str
    items: list[Any]


class ListResult(BaseModel):
    namespace: str
    keys: list[str]
    cursor: str | None = Field(None, description="pass back to get the next page; null: done")


class DeleteResult(BaseModel):
    namespace: str
    key: str
    deleted: bool


class Entity(BaseModel):
    name: Annotated[str, Field(description="The name of the entity")]
    entityType: Annotated[str, Field(description="The type of the entity")]
    observations: Annotated[
        list[str], Field(description="An array of observation contents associated with the entity")
    ]


class Relation(BaseModel):
    from_: Annotated[
        str, Field(alias="from", description="The name of the entity where the relation starts")
    ]
    to: Annotated[str, Field(description="The name of the entity where the relation ends")]
    relationType: Annotated[str, Field(description="The type of the relation")]

    model_config = {"populate_by_name": True}

    def plain(self) -> dict[str, str]:
        return {"from": self.from_, "to": self.to, "relationType": self.relationType}


class ObservationAdd(BaseModel):
    entityName: Annotated[
        str, Field(description="The name of the entity to add the observations to")
    ]
    contents: Annotated[list[str], Field(description="An array of observation contents to add")]


class ObservationDelete(BaseModel):
    entityName: Annotated[
        str, Field(description="The name of the entity containing the observations")
    ]
    observations: Annotated[list[str], Field(description="An array of observations to delete")]


class AddedObservations(BaseModel):
    entityName: str
    addedObservations: list[str]


class EntitiesOut(BaseModel):
    entities: list[Entity]


class RelationsOut(BaseModel):
    relations: list[Relation]


class ResultsOut(BaseModel):
    results: list[AddedObservations]


class StatusOut(BaseModel):
    success: bool
    message: str


class GraphOut(BaseModel):
    entities: list[Entity]
    relations: list[Relation]
