"""OpenNebula template attributes as plain strings: no XML library, so cheap actions can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:
    from lxml import etree

YES = frozenset({"yes", "true", "1", "on"})


class Template:
    """Single-valued attributes of an OpenNebula TEMPLATE element. (A plain class: every action makes
    some at start-up, where a NamedTuple would cost its creation.)"""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.values == self.values

    def __repr__(self) -> str:
        return f"Template({self.values!r})"

    @classmethod
    def from_element(cls, node: Optional[etree._Element]) -> "Template":
        values: dict[str, str] = {}
        if node is not None:
            for child in node:
                if isinstance(child.tag, str) and len(child) == 0:
                    values[child.tag] = (child.text or "").strip()
        return cls(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Template":
        """From pyone's dict of a TEMPLATE or DISK: single values only, vector attributes left out."""
        return cls({k: str(v).strip() for k, v in values.items() if isinstance(v, (str, int, float))
                    and not k.startswith("#")})

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name) or default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if not value:
            return default
        return value.lower() in YES
