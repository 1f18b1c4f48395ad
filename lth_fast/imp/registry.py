"""A registry: named entries of one kind (criteria, branches, analyses), each defined in its own
small file and registered there, so that adding one is one new file plus its import in the
package's __init__ (docs/architecture.md, "Extending")."""
from __future__ import annotations

from typing import Dict, Generic, Iterator, Tuple, TypeVar

from ..pruning.rule import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """{name: entry} in registration order; entries have a `name` attribute."""

    def __init__(self, kind: str, unique: Tuple[str, ...] = ()) -> None:
        self.kind, self.unique = kind, unique   # unique: attributes no two entries share
        self._entries: Dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Adds `entry` (usable as a class decorator); a name, or a `unique` attribute, that
        another entry has already is an error."""
        name = getattr(entry, "name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        for attr in self.unique:
            other = next((n for n, e in self._entries.items()
                          if getattr(e, attr) == getattr(entry, attr)), None)
            if other is not None:
                raise ValueError(f"{self.kind} {name!r} has {attr} {getattr(entry, attr)!r}, "
                                 f"which {other!r} has already")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        self.check(name)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def values(self):
        return self._entries.values()

    def names(self, **where) -> list:
        """The names, in registration order, of the entries whose attributes equal `where`."""
        return [n for n, e in self._entries.items()
                if all(getattr(e, k) == v for k, v in where.items())]

    def check(self, name, field: str = "name", **where) -> None:
        """A ConfigError naming `field` and the known names unless `name` is one of them."""
        known = self.names(**where)
        if name not in known:
            raise ConfigError(f"{{0}}: unknown {self.kind} {name!r}; known: {', '.join(known)}",
                              field)
