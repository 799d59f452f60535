"""`Labels`: the value type of a worker's labels."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Labels(Mapping[str, str]):
    """A worker's labels: an immutable, hashable str -> str mapping (so Config hashes)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"Labels({self._items!r})"
