"""Where each character of a rendered template came from in the template's source text.

:meth:`Template.execute_mapped <sqlrunner.template.Template.execute_mapped>` returns
the rendered text with a :class:`SourceMap`, so that a position the database reports
in the rendered SQL (PostgreSQL's ``position``, say) can be shown as a line and
column of the template file:

    >>> from sqlrunner.template import parse
    >>> source = "SELECT *\\nFROM {{.schema}}.t\\nWHERE x"
    >>> sql, where = parse(source, "q.sql").execute_mapped({"schema": "web"})
    >>> where.source_position(sql.index("WHERE"), source)
    (3, 1)
    >>> where.source_position(sql.index("web"), source)
    (2, 6)

The map is a list of segments of the output, each either *text* (copied from a
text node of the source, so it maps character by character, after ``{{-``/``-}}``
trimming) or the *output of an action* (``{{.x}}``, ``{{printf ...}}``, ...),
every character of which maps to the ``{{`` that opens the action. Text and
actions inside ``range`` bodies, ``if``/``with`` branches and ``define``d
templates map to their own place in the source, whichever iteration, branch or
``{{template}}`` call wrote them. Offsets are 0-based character offsets.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["SourceMap", "build_source_map"]


@dataclass(frozen=True, slots=True)
class SourceMap:
    """The origin in the source of each part of one rendered output.

    ``starts[i]`` is where segment ``i`` starts in the rendered text (the
    segments are contiguous, start at 0 and end at ``length``), ``sources[i]``
    is its start in the source text, and ``literal[i]`` says whether it is text
    copied from the source (mapped character by character) or the output of an
    action (every character mapped to ``sources[i]``). ``end_source`` is where
    the end of the rendered text (offset ``length``) maps: just after the last
    text copied, or the start of the action that wrote last.
    """

    length: int
    starts: tuple[int, ...]
    sources: tuple[int, ...]
    literal: tuple[bool, ...]
    end_source: int = 0

    def source_offset(self, rendered_offset: int) -> int:
        """The source offset of character ``rendered_offset`` of the rendered text.

        ``rendered_offset`` may be ``length`` (the end of the output), which maps
        to ``end_source``; outside ``0..length`` is an :class:`IndexError`.
        """
        if not 0 <= rendered_offset <= self.length:
            raise IndexError(
                f"rendered offset {rendered_offset} is outside 0..{self.length}")
        if rendered_offset == self.length:
            return self.end_source
        index = bisect_right(self.starts, rendered_offset) - 1
        source = self.sources[index]
        if self.literal[index]:
            return source + rendered_offset - self.starts[index]
        return source

    def source_position(self, rendered_offset: int, source_text: str) -> tuple[int, int]:
        """The 1-based line and column (in characters) in ``source_text`` of a rendered offset.

        ``source_text`` is the template's source, as parsed
        (:attr:`Template.source <sqlrunner.template.Template.source>`).
        """
        offset = self.source_offset(rendered_offset)
        line_start = source_text.rfind("\n", 0, offset) + 1
        return source_text.count("\n", 0, offset) + 1, offset - line_start + 1

    def segments(self) -> Iterator[tuple[int, int, int, bool]]:
        """Each segment as ``(rendered_start, rendered_end, source_start, literal)``."""
        ends = self.starts[1:] + (self.length,)
        return iter(zip(self.starts, ends, self.sources, self.literal, strict=True))


def build_source_map(pieces: Sequence[str], origins: Sequence[int]) -> SourceMap:
    """The map of the output ``"".join(pieces)``.

    ``origins[i]`` says where ``pieces[i]`` came from: a source offset ``>= 0``
    for text copied from there, or ``~start`` (negative) for the output of the
    action that starts at source offset ``start``. Empty pieces are dropped, and
    a piece that continues the previous segment (the next text of the source, or
    more output of the same action) joins it.
    """
    starts: list[int] = []
    sources: list[int] = []
    literal: list[bool] = []
    rendered = 0
    next_source = -1  # where the last segment would continue in the source
    last_origin = 0
    end_source = 0
    for piece, origin in zip(pieces, origins, strict=True):
        size = len(piece)
        if not size:
            continue
        if origin >= 0:
            if origin != next_source or not literal or not literal[-1]:
                starts.append(rendered)
                sources.append(origin)
                literal.append(True)
            next_source = end_source = origin + size
        else:
            if not literal or literal[-1] or origin != last_origin:
                starts.append(rendered)
                sources.append(~origin)
                literal.append(False)
            next_source = -1
            end_source = ~origin
        last_origin = origin
        rendered += size
    return SourceMap(rendered, tuple(starts), tuple(sources), tuple(literal), end_source)
