"""Array storage for a finite Builder filled in bulk.

A Builder without symmetry starts with its sites and hoppings in arrays: one row per site
(family number, integer tag, value number) and one per hopping (the two site rows and a
value number), values kept once each in a table. Assignments of many sites (a generator of
sites, a lattice shape) or hoppings (``lat.neighbors()``) are then array operations, no
Site object is kept per site, and ``finalized()`` reads the arrays. Every operation that
needs the general structure (deletion, iteration, ``fill``...) turns the store into the
Builder's dictionaries first, with the same contents and order the dictionaries would have
had, so behaviour never depends on which representation was used.

The semantics follow the dictionaries exactly: setting a site again keeps its place in
the order and replaces its value; setting a hopping again (in either direction) replaces
it and moves it to the end; a hopping is stored in the direction it was last set.
"""

from __future__ import annotations

import array
import contextlib
import gc
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .lattice import Monatomic, Site, SiteFamily, Tag, _new_site

__all__ = ["BulkStore", "LazySites", "NotBulk", "SiteSource", "gc_paused", "row_membership"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many objects are made at once.

    Making a million Site objects triggers collections that walk every live object again
    and again (a third of the time); none of these objects is part of a cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class NotBulk(Exception):
    """The store cannot hold this (tags that are not small integers): use dictionaries."""


# Encoded keys must fit int64 with room to spare.
_KEY_LIMIT = 2**62
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class BulkStore:
    """Sites and hoppings of a finite Builder in arrays (see the module docstring)."""

    def __init__(self) -> None:
        self.families: list[SiteFamily] = []
        self._family_number: dict[SiteFamily, int] = {}
        self.tag_length: list[int] = []
        self.values: list[Any] = []
        self._value_number: dict[int, int] = {}
        # Merged sites, in the order they were first set.
        self.fam = np.zeros(0, dtype=np.int32)
        self.tags = np.zeros((0, 0), dtype=np.int64)
        self.val = np.zeros(0, dtype=np.int64)
        # Sites set since the last merge: chunks of (families, tags, values).
        self._pending: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []
        # Pending chunks of single sites: (index in _pending, number of its first site).
        self._pending_numbers: list[tuple[int, int]] = []
        self._pending_count = 0
        # Single sites set since the last merge: families, tags, values.
        # Single sites set since the last merge, in order: site -> value number. A script
        # that sets sites and hoppings one by one finds its sites here without a merge.
        # (A site gets a number when first set; its value sits at number - _single_base.)
        self._single: dict[Any, int] = {}
        self._single_values = array.array("q")
        self._single_base = 0
        self._next_id = 0
        # Single hoppings since the last hopping batch, as three int64 arrays: ends by
        # merged row (>= 0) or by single-site number n (-(n + 1), made rows at the next
        # merge), and value numbers. No Site object is kept for them.
        self._hop_ends = (array.array("q"), array.array("q"))
        self._hop_values = array.array("q")
        # Lookup: sorted encoded keys and the row of each.
        self._keys = np.zeros(0, dtype=np.int64)
        self._key_rows = np.zeros(0, dtype=np.int64)
        self._lookup = True
        self._lo_list, self._span_list = [0], [1]
        self._lo = np.zeros(1, dtype=np.int64)
        self._span = np.ones(1, dtype=np.int64)
        # Hoppings: chunks of (row a, row b, value) in the order they were set.
        self._hops: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []
        self._hops_merged = True
        self._hop_keys: NDArray[np.int64] | None = None
        self._hop_key_rows = np.zeros(0, dtype=np.int64)
        # Merges forced by lookups between single-site assignments: many of them mean a
        # script that works site by site, better served by dictionaries.
        self.small_merges = 0

    # ---- numbering -------------------------------------------------------------------

    def family_number(self, family: SiteFamily, tag_length: int) -> int:
        number = self._family_number.get(family)
        if number is None:
            if not isinstance(family, Monatomic):
                raise NotBulk  # tags that need not be lattice coordinates
            number = len(self.families)
            self.families.append(family)
            self._family_number[family] = number
            self.tag_length.append(tag_length)
            extra = tag_length - self.tags.shape[1]
            if extra > 0:
                # New key columns of span 1 leave every key as it was.
                self.tags = np.pad(self.tags, ((0, 0), (0, extra)))
                self._lo = np.concatenate([self._lo, np.zeros(extra, dtype=np.int64)])
                self._span = np.concatenate([self._span, np.ones(extra, dtype=np.int64)])
                self._lo_list, self._span_list = self._lo.tolist(), self._span.tolist()
        elif self.tag_length[number] != tag_length:
            raise NotBulk
        return number

    def value_number(self, value: Any) -> int:
        number = self._value_number.get(id(value))
        if number is None:
            number = len(self.values)
            self.values.append(value)
            self._value_number[id(value)] = number
        return number

    def known_family(self, family: SiteFamily) -> int:
        """The number of `family`, or -1 when no site of it was set."""
        return self._family_number.get(family, -1)

    # ---- sites -----------------------------------------------------------------------

    def site_rows(self, sites: Sequence[Any]) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Family numbers and tags of Site objects (NotBulk for tags that are not ints)."""
        fams = np.empty(len(sites), dtype=np.int32)
        tags: list[Any] = []
        last_family: Any = None
        number = -1
        for k, site in enumerate(sites):
            family, tag = site.family, site._tag
            if family is not last_family:
                if type(tag) is not Tag and type(tag) is not tuple:
                    raise NotBulk
                number = self.family_number(family, len(tag))
                last_family = family
            fams[k] = number
            tags.append(tag)
        return fams, self._tag_array(tags, fams)

    def _tag_array(self, tags: list[Any], fams: NDArray[np.int32]) -> NDArray[np.int64]:
        width = self.tags.shape[1]
        if not tags:
            return np.zeros((0, width), dtype=np.int64)
        lengths = {self.tag_length[int(f)] for f in np.unique(fams)}
        try:
            if len(lengths) == 1:
                length = lengths.pop()
                array = np.fromiter(
                    itertools.chain.from_iterable(tags), dtype=np.int64, count=len(tags) * length
                ).reshape(len(tags), length)
            else:
                array = np.zeros((len(tags), width), dtype=np.int64)
                for k, tag in enumerate(tags):
                    array[k, : len(tag)] = tag
        except (TypeError, ValueError, OverflowError):
            raise NotBulk from None
        if array.shape[1] < width:
            array = np.pad(array, ((0, 0), (0, width - array.shape[1])))
        return array

    def add_site(self, site: Any, value: Any) -> None:
        """Set one site (kept in lists until the next merge)."""
        family, tag = site.family, site._tag
        number = self._family_number.get(family)
        if number is None or self.tag_length[number] != len(tag):
            if type(tag) is not Tag and type(tag) is not tuple:
                raise NotBulk
            number = self.family_number(family, len(tag))
        for entry in tag:
            if type(entry) is not int or not _INT64_MIN <= entry <= _INT64_MAX:
                raise NotBulk  # not an int64: the dictionaries hold it
        number = self._single.get(site)
        if number is None:
            self._single[site] = self._next_id
            self._next_id += 1
            self._single_values.append(self.value_number(value))
            self._pending_count += 1
        else:
            self._single_values[number - self._single_base] = self.value_number(value)

    def _flush_single(self) -> None:
        if not self._single:
            return
        sites = list(self._single)
        values = np.array(self._single_values, dtype=np.int64)
        base = self._single_base
        self._single = {}
        self._single_values = array.array("q")
        self._single_base = self._next_id
        numbers = self._family_number
        fams = np.fromiter((numbers[s.family] for s in sites), dtype=np.int32, count=len(sites))
        tags = self._tag_array([s._tag for s in sites], fams)
        self._pending.append((fams, tags, values))
        self._pending_numbers.append((len(self._pending) - 1, base))

    def endpoint(self, site: Any) -> int | None:
        """A hopping end for :meth:`add_hopping`: the site's row, or -(n + 1) for the
        single site number n not merged yet; None when the site is not set."""
        if self._pending:
            # Arrays set in bulk are merged first, so that a number handed out here stays
            # a single site's until the next merge, which turns stored numbers into rows.
            self.merge()
        number = self._single.get(site)
        if number is not None:
            return -(number + 1)
        row = self._merged_row(site)
        return row if row >= 0 else None

    def site_value(self, site: Any) -> tuple[bool, Any]:
        """(present, value) of one site, without merging single sites."""
        number = self._single.get(site)
        if number is not None:
            return True, self.values[self._single_values[number - self._single_base]]
        if self._pending:
            self.merge()
        row = self._merged_row(site)
        return (row >= 0, self.values[int(self.val[row])] if row >= 0 else None)

    def add_sites(
        self, fams: NDArray[np.int32], tags: NDArray[np.int64], value: int | NDArray[np.int64]
    ) -> None:
        if len(fams) == 0:
            return
        self._flush_single()
        if tags.shape[1] < self.tags.shape[1]:
            tags = np.pad(tags, ((0, 0), (0, self.tags.shape[1] - tags.shape[1])))
        values = np.broadcast_to(np.asarray(value, dtype=np.int64), (len(fams),))
        self._pending.append((fams, tags, values))
        self._pending_count += len(fams)

    def merge(self) -> None:
        """Fold the pending sites into the merged arrays and rebuild the lookup."""
        self._flush_single()
        if not self._pending:
            return
        if len(self.fam) and self._pending_count < max(64, len(self.fam) // 8):
            self.small_merges += 1
        width = self.tags.shape[1]
        chunks = [(self.fam, self.tags, self.val), *self._pending]
        fam = np.concatenate([c[0] for c in chunks])
        tags = np.concatenate([np.pad(c[1], ((0, 0), (0, width - c[1].shape[1]))) for c in chunks])
        val = np.concatenate([c[2] for c in chunks])
        starts = np.cumsum([0] + [len(c[0]) for c in chunks])
        numbered = [
            (int(starts[k + 1]), len(chunks[k + 1][0]), base) for k, base in self._pending_numbers
        ]
        self._pending = []
        self._pending_numbers = []
        self._pending_count = 0
        columns = np.column_stack([fam.astype(np.int64), tags])
        lo = columns.min(axis=0)
        span = columns.max(axis=0) - lo + 1
        self._lookup = float(np.prod(span.astype(float))) < _KEY_LIMIT
        if self._lookup:
            self._lo, self._span = lo, span
            keys = self._encode(columns)
        else:
            # Tags too far apart for integer keys: no lookups (the Builder then turns to
            # its dictionaries), but the store still merges correctly.
            keys = np.unique(columns, axis=0, return_inverse=True)[1].ravel()
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        _, last_reversed = np.unique(keys[::-1], return_index=True)
        last = len(keys) - 1 - last_reversed
        order = np.argsort(first, kind="stable")
        rows = first[order]
        self.fam, self.tags, self.val = fam[rows], tags[rows], val[last[order]]
        self._keys = unique
        self._lo_list, self._span_list = self._lo.tolist(), self._span.tolist()
        key_rows = np.empty(len(unique), dtype=np.int64)
        key_rows[order] = np.arange(len(unique))
        self._key_rows = key_rows
        if numbered and len(self._hop_values):
            self._number_rows(numbered, key_rows[inverse.ravel()])

    def _number_rows(self, numbered: list[tuple[int, int, int]], rows: NDArray[np.int64]) -> None:
        """Hopping ends given by single-site numbers become rows: `numbered` holds
        (offset in the merged chunks, count, first number) per chunk of single sites,
        `rows` the row of every merged chunk entry."""
        low = min(base for _, _, base in numbered)
        high = max(base + count for _, count, base in numbered)
        row_of_number = np.full(high - low, -1, dtype=np.int64)
        for offset, count, base in numbered:
            row_of_number[base - low : base - low + count] = rows[offset : offset + count]
        ends = []
        for end in self._hop_ends:
            codes = np.array(end, dtype=np.int64)
            numbers = codes < 0
            codes[numbers] = row_of_number[-codes[numbers] - 1 - low]
            ends.append(array.array("q", codes.tobytes()))
        self._hop_ends = (ends[0], ends[1])

    def remove(self, rows: NDArray[np.int64]) -> None:
        """Remove merged sites and their hoppings; the rest keep their order."""
        ha, hb, hv = self.merge_hoppings()
        keep = np.ones(len(self.fam), dtype=bool)
        keep[rows] = False
        renumber = (np.cumsum(keep) - 1).astype(np.int32)
        stays = keep[ha] & keep[hb]
        self._hops = [(renumber[ha[stays]], renumber[hb[stays]], hv[stays])]
        self._hop_keys = None
        self.fam, self.tags, self.val = self.fam[keep], self.tags[keep], self.val[keep]
        if self._lookup:
            keys = self._encode(np.column_stack([self.fam.astype(np.int64), self.tags]))
            order = np.argsort(keys)
            self._keys, self._key_rows = keys[order], order
        if len(rows) < max(64, len(self.fam) // 8):
            self.small_merges += 1

    def degrees(self) -> NDArray[np.int64]:
        """Number of hoppings at each merged site."""
        ha, hb, _ = self.merge_hoppings()
        n = len(self.fam)
        return np.bincount(ha, minlength=n) + np.bincount(hb, minlength=n)

    def _encode(self, columns: NDArray[np.int64]) -> NDArray[np.int64]:
        return _radix_keys(columns, self._lo, self._span)

    def find(self, fams: NDArray[np.int32] | int, tags: NDArray[np.int64]) -> NDArray[np.int64]:
        """Rows of the merged sites with these families and tags, -1 where absent."""
        if len(tags) == 0:
            return np.zeros(0, dtype=np.int64)
        tags = np.asarray(tags, dtype=np.int64).reshape(len(tags), -1)
        width = self.tags.shape[1]
        if tags.shape[1] < width:
            tags = np.pad(tags, ((0, 0), (0, width - tags.shape[1])))
        columns = np.column_stack([np.broadcast_to(fams, len(tags)).astype(np.int64), tags])
        if not self._lookup:
            raise NotBulk
        result = np.full(len(tags), -1, dtype=np.int64)
        if not len(self._keys) or columns.shape[1] != len(self._lo):
            return result
        inside = np.all((columns >= self._lo) & (columns < self._lo + self._span), axis=1)
        keys = self._encode(columns[inside])
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = self._keys[at] == keys
        rows = np.where(found, self._key_rows[at], -1)
        result[inside] = rows
        return result

    def find_site(self, site: Any) -> int:
        """The row of one site, -1 when absent (merging pending sites first)."""
        self.merge()
        return self._merged_row(site)

    def _merged_row(self, site: Any) -> int:
        """The row of one site among the merged ones, -1 when absent."""
        number = self._family_number.get(site.family)
        if number is None:
            return -1
        tag = site._tag
        if len(tag) != self.tag_length[number] or not len(self._keys):
            return -1
        if not self._lookup:
            raise NotBulk
        key = 0
        lo, span = self._lo_list, self._span_list
        try:
            entries = [number, *tag]
        except TypeError:
            return -1
        entries += [0] * (len(lo) - len(entries))
        for k, entry in enumerate(entries):
            if type(entry) is not int:
                try:
                    entry = int(entry)
                except (TypeError, ValueError):
                    return -1
            shifted = entry - lo[k]
            if not 0 <= shifted < span[k]:
                return -1
            key = key * span[k] + shifted
        keys = self._keys
        at = int(keys.searchsorted(key))
        if at < len(keys) and keys[at] == key:
            return int(self._key_rows[at])
        return -1

    @property
    def num_sites(self) -> int:
        self.merge()
        return len(self.fam)

    def make_sites(self, rows: NDArray[np.int64] | None = None) -> list[Site]:
        """Site objects of merged rows (all of them by default), in that order."""
        self.merge()
        fam = self.fam if rows is None else self.fam[rows]
        tags = self.tags if rows is None else self.tags[rows]
        families, lengths = self.families, self.tag_length
        with gc_paused():
            return [
                _new_site(families[f], Tag(tag[: lengths[f]]))
                for f, tag in zip(fam.tolist(), tags.tolist())
            ]

    # ---- hoppings --------------------------------------------------------------------

    def set_hopping(self, a: Any, b: Any, value: int) -> bool:
        """Set one hopping between two different sites that are set; False (nothing set)
        otherwise."""
        end_a, end_b = self.endpoint(a), self.endpoint(b)
        if end_a is None or end_b is None or end_a == end_b:
            return False
        self.add_hopping(end_a, end_b, value)
        return True

    def rows_of(self, sites: Sequence[Any]) -> NDArray[np.int64]:
        """Rows of Site objects among the merged sites (merging first), -1 where absent."""
        self.merge()
        rows = np.full(len(sites), -1, dtype=np.int64)
        known = [k for k, site in enumerate(sites) if site.family in self._family_number]
        if known:
            fams, tags = self.site_rows([sites[k] for k in known])
            rows[known] = self.find(fams, tags)
        return rows

    def add_hopping(self, a: int, b: int, value: int) -> None:
        """Set one hopping between ends given by :meth:`endpoint`."""
        self._hop_ends[0].append(a)
        self._hop_ends[1].append(b)
        self._hop_values.append(value)
        self._hops_merged = False
        self._hop_keys = None

    def _flush_single_hops(self) -> None:
        """The single hoppings as one batch of rows (the sites merged first)."""
        if not len(self._hop_values):
            return
        self.merge()
        a = np.array(self._hop_ends[0], dtype=np.int32)
        b = np.array(self._hop_ends[1], dtype=np.int32)
        if len(a) and min(int(a.min()), int(b.min())) < 0:
            raise AssertionError("a hopping end still names a site not merged")
        values = np.array(self._hop_values, dtype=np.int32)
        self._hop_ends = (array.array("q"), array.array("q"))
        self._hop_values = array.array("q")
        self._hops.append((a, b, values))

    def add_hoppings(
        self, a: NDArray[np.int64], b: NDArray[np.int64], value: int | NDArray[np.int64]
    ) -> None:
        if len(a):
            self._flush_single_hops()
            values = np.broadcast_to(np.asarray(value, dtype=np.int32), a.shape)
            self._hops.append((a.astype(np.int32), b.astype(np.int32), values))
            self._hops_merged = False
            self._hop_keys = None

    def merge_hoppings(self) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        """The hoppings (row a, row b, value): the last setting of each, in setting order."""
        self.merge()
        self._flush_single_hops()
        if not self._hops:
            empty = np.zeros(0, dtype=np.int32)
            return empty, empty, empty
        if not self._hops_merged:
            a = np.concatenate([h[0] for h in self._hops])
            b = np.concatenate([h[1] for h in self._hops])
            v = np.concatenate([h[2] for h in self._hops])
            keys = self._pair_keys(a, b)
            _, last_reversed = np.unique(keys[::-1], return_index=True)
            del keys
            if len(last_reversed) < len(a):
                last = np.sort(len(a) - 1 - last_reversed)
                a, b, v = a[last], b[last], v[last]
            self._hops = [(a, b, v)]
            self._hops_merged = True
        return self._hops[0]

    def _pair_keys(self, a: NDArray[np.int32], b: NDArray[np.int32]) -> NDArray[np.int64]:
        return (np.minimum(a, b).astype(np.int64) << np.int64(31)) + np.maximum(a, b)

    def find_hopping(self, a: int, b: int) -> tuple[int, bool] | None:
        """(index in merge_hoppings(), stored reversed) of the hopping between rows a, b."""
        ha, hb, _ = self.merge_hoppings()
        if not len(ha):
            return None
        if self._hop_keys is None:
            keys = self._pair_keys(ha, hb)
            order = np.argsort(keys)
            self._hop_keys, self._hop_key_rows = keys[order], order
        key = self._pair_keys(np.array([a]), np.array([b]))[0]
        at = int(np.searchsorted(self._hop_keys, key))
        if at >= len(self._hop_keys) or self._hop_keys[at] != key:
            return None
        k = int(self._hop_key_rows[at])
        return k, bool(ha[k] != a)

    @property
    def num_hoppings(self) -> int:
        return len(self.merge_hoppings()[0])


class LazySites(Sequence[Any]):
    """Sites (or pairs of sites) of a term group, made when asked for.

    A term group with a constant value needs its sites only to name one in a message; a
    million Site objects are not made for that. Reads the store's arrays (which never
    change once merged: a merge makes new ones) at the given rows.
    """

    __slots__ = ("_fam", "_families", "_lengths", "_rows", "_tags")

    def __init__(
        self,
        families: Sequence[SiteFamily],
        lengths: Sequence[int],
        fam: NDArray[np.int32],
        tags: NDArray[np.int64],
        rows: Sequence[NDArray[np.int32]],
    ) -> None:
        self._families = tuple(families)
        self._lengths = tuple(lengths)
        self._fam, self._tags = fam, tags
        self._rows = tuple(rows)

    def _site(self, row: int) -> Site:
        f = int(self._fam[row])
        return _new_site(self._families[f], Tag(self._tags[row, : self._lengths[f]].tolist()))

    def __len__(self) -> int:
        return len(self._rows[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        k = int(index)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(index)
        if len(self._rows) == 2:
            return (self._site(int(self._rows[0][k])), self._site(int(self._rows[1][k])))
        return self._site(int(self._rows[0][k]))

    def __iter__(self) -> Iterator[Any]:
        return (self[k] for k in range(len(self)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            LazySites,
            (self._families, self._lengths, self._fam, self._tags, self._rows),
        )


class SiteSource:
    """The sites of a finalized System, in its order, made when first asked for.

    A snapshot of the store's arrays at finalization: later changes to the Builder do
    not reach the System. ``families`` lists the site families without making sites.
    """

    __slots__ = ("_all_families", "_fam", "_lengths", "_order", "_tags", "families")

    def __init__(self, bulk: BulkStore, order: NDArray[np.int64]) -> None:
        self._fam, self._tags, self._order = bulk.fam, bulk.tags, order
        self._lengths = tuple(bulk.tag_length)
        self._all_families = tuple(bulk.families)
        self.families = tuple(bulk.families[f] for f in np.unique(bulk.fam).tolist())

    def __call__(self) -> list[Site]:
        fam = self._fam[self._order].tolist()
        tags = self._tags[self._order].tolist()
        families, lengths = self._all_families, self._lengths
        with gc_paused():
            return [_new_site(families[f], Tag(t[: lengths[f]])) for f, t in zip(fam, tags)]


def row_membership(rows: NDArray[np.int64], table: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each row of `rows` (integer tags, shape (n, d)) is a row of `table`."""
    if not len(rows) or not len(table):
        return np.zeros(len(rows), dtype=bool)
    both = np.concatenate([rows, table])
    lo = both.min(axis=0)
    span = both.max(axis=0) - lo + 1
    if float(np.prod(span.astype(float))) >= _KEY_LIMIT:
        wanted = {tuple(r) for r in table.tolist()}
        return np.array([tuple(r) in wanted for r in rows.tolist()], dtype=bool)
    keys = _radix_keys(both, lo, span)
    return np.isin(keys[: len(rows)], keys[len(rows) :])


def _radix_keys(
    columns: NDArray[np.int64], lo: NDArray[np.int64], span: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Integer rows as one int64 key each: column k, shifted by ``lo[k]``, is a digit of
    base ``span[k]`` (the product of the spans must stay below ``_KEY_LIMIT``)."""
    keys = np.zeros(len(columns), dtype=np.int64)
    for k in range(columns.shape[1]):
        keys = keys * span[k] + (columns[:, k] - lo[k])
    return keys
