"""Mutable tight-binding Builder, hopping kinds and translational symmetry.

The Builder follows Kwant's semantics so that a Kwant transport script ports by
changing its import:

* ``syst[site] = value`` sets the onsite Hamiltonian block of `site`;
* ``syst[a, b] = value`` sets the matrix element ``<a|H|b> = value`` (the hopping
  from `b` to `a`) and, implicitly, its Hermitian conjugate for ``(b, a)``;
* a value is a number, a matrix (one row/column per orbital), or a function.
  Onsite functions receive the site, hopping functions the two sites ``(a, b)``,
  followed by parameters by name, supplied at solve time as ``params={...}``;
* keys may also be iterables of sites or hoppings, :class:`HoppingKind` objects
  (for example ``lat.neighbors()``), or lattice shapes.

A Builder with a :class:`TranslationalSymmetry` describes a lead: it stores one
period (the fundamental domain) and hoppings to the neighbouring periods.

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(1.0, norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(3) for y in range(2))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> len(list(syst.sites())), len(list(syst.hoppings()))
(6, 7)
>>> syst[lat(1, 0), lat(0, 0)]
-1.0
"""

from __future__ import annotations

import functools
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, KeysView, Sequence
from typing import Any, Generic, NoReturn, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._bulk import BulkStore, LazySites, NotBulk, SiteSource, gc_paused, row_membership
from .lattice import (
    HoppingKind,
    Monatomic,
    NoSymmetry,
    Polyatomic,
    Shape,
    Site,
    SiteArray,
    SiteFamily,
    Symmetry,
    Tag,
    TranslationalSymmetry,
    _described,
    _new_site,
    _PackedTags,
)
from .system import InfiniteSystem, ModesLead, SelfEnergyLead, System, TermGroup
from .system import Other as Other  # Kwant's builder.Other, re-exported

__all__ = [
    "ArrayBuilder",
    "Builder",
    "BuilderLead",
    "HermConjOfFunc",
    "HoppingKind",
    "ModesLead",
    "NoSymmetry",
    "SelfEnergyLead",
    "Site",
    "SiteFamily",
    "Symmetry",
    "TranslationalSymmetry",
]


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


_DONE = object()  # Builder._bulk_set: the assignment is done
_NUMBERS = (int, float, complex)


def _check_value(value: Any, what: str | Callable[[], str]) -> Any:
    """Validate a Builder value: a number, a matrix, or a callable.

    Returns the value itself, as Kwant stores it (``syst[site] is value``). Whether a
    matrix fits the sites' norbs and whether an onsite value is Hermitian are checked
    when the Hamiltonian is evaluated, as in Kwant: a Builder may hold a value that the
    system's families make invalid until a later assignment replaces it. `what` names the
    value in a message (a function making the text is called only for one).
    """
    if callable(value):
        return value
    if not isinstance(what, str):
        if type(value) in (int, float, complex):
            return value
        what = what()
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} value must be a number, a matrix or a function, got {value!r}")
    if isinstance(value, (int, float, complex, np.number)):
        return value
    try:
        arr = np.array(value, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} value must be a number, a matrix or a function, got {value!r}"
        ) from exc
    if arr.ndim == 0:
        return complex(arr) if np.iscomplexobj(value) else value
    if arr.ndim != 2:
        raise ValueError(f"{what} value must be a number or a 2-d matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} value contains NaN or inf: {value!r}")
    return value


def _which1(symmetry: Any, site: Site) -> int:
    """The domain number of `site` under a symmetry with one direction (a lead's)."""
    if isinstance(symmetry, TranslationalSymmetry):
        return symmetry._which1(site)
    element = np.ravel(np.asarray(symmetry.which(site)))
    if element.size != 1:
        raise ValueError(
            f"a lead needs a symmetry with one direction; {symmetry!r} gave the group "
            f"element {element.tolist()} for {_described(site)}"
        )
    return int(element[0])


def _is_hopping_key(key: Any) -> bool:
    return isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, Site) for k in key)


def _checked_hopping(key: tuple[Any, ...]) -> tuple[Site, Site]:
    """A tuple key as a hopping, with Kwant's errors: TypeError for something that is not
    a site, IndexError for a tuple that is not a pair, ValueError for a site to itself."""
    if not all(isinstance(k, Site) for k in key):
        raise TypeError(f"a hopping is a pair of sites, got {_described(key)}")
    if len(key) != 2:
        raise IndexError(
            f"a hopping is a pair of sites, got a tuple of {len(key)} site(s): {_described(key)} "
            "(give "
            "several sites as a list)"
        )
    if key[0] == key[1]:
        raise ValueError(
            f"hopping {_described(key)} connects a site to itself; set the onsite value"
        )
    return key[0], key[1]


def _checked_site(site: Any) -> Site:
    if not isinstance(site, Site):
        raise TypeError(f"expected a site, got {_described(site)}")
    return site


# --------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------


_Symmetry = TypeVar("_Symmetry", TranslationalSymmetry, None)


class Builder(Generic[_Symmetry]):
    """A tight-binding system under construction.

    Parameters
    ----------
    symmetry : TranslationalSymmetry, optional
        Present for leads: the Builder then stores one period.
    conservation_law : array_like or callable, optional
        An onsite operator (matrix, or function of the site) commuting with the
        Hamiltonian, for example a spin projection. Its eigenvalues label blocks of
        the lead modes so that the S-matrix resolves into them
        (``S.transmission((1, 0), (0, 0))``, block 0 being the smallest eigenvalue).
    time_reversal, particle_hole, chiral : optional
        Accepted for compatibility with Kwant scripts; stored but not used by the
        transport solvers.
    vectorize : bool
        Call value functions once per group of sites (or hoppings) with
        :class:`~mesoscopic.lattice.SiteArray` arguments instead of once per site.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.square(norbs=1)
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    >>> lead[(lat(0, y) for y in range(3))] = 4
    >>> lead[lat.neighbors()] = -1
    >>> len(list(lead.hoppings()))   # 2 inside the period, 3 to the next
    5
    """

    # The type parameter records whether the Builder has a symmetry, so that a type
    # checker knows what finalized() returns: Builder() a System, a lead an InfiniteSystem.
    @overload
    def __init__(
        self: Builder[None],
        symmetry: None = None,
        *,
        conservation_law: Any = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
        vectorize: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self: Builder[TranslationalSymmetry],
        symmetry: TranslationalSymmetry,
        *,
        conservation_law: Any = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
        vectorize: bool = False,
    ) -> None: ...

    def __init__(
        self,
        symmetry: TranslationalSymmetry | None = None,
        *,
        conservation_law: Any = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
        vectorize: bool = False,
    ) -> None:
        self.symmetry = symmetry
        self.conservation_law = conservation_law
        self.time_reversal = time_reversal
        self.particle_hole = particle_hole
        self.chiral = chiral
        self.vectorize = bool(vectorize)
        self._d_sites: dict[Site, Any] = {}
        # Each hopping is stored once, as (a, b) -> <a|H|b>; with a symmetry, `a` is in
        # the fundamental domain.
        self._d_hoppings: dict[tuple[Site, Site], Any] = {}
        self._d_adjacent: dict[Site, set[Site]] = {}
        # A finite Builder starts with its sites and hoppings in arrays (see _bulk); the
        # dictionaries above take over at the first operation that needs them.
        self._bulk: BulkStore | None = BulkStore() if self._symmetry is None else None
        self.leads: list[BuilderLead] = []

    # ---- storage ---------------------------------------------------------------------

    def _materialize(self) -> None:
        """Move the array store's contents into the dictionaries, in the same order."""
        bulk = self.__dict__.get("_bulk")
        if bulk is None:
            return
        sites = bulk.make_sites()
        values = bulk.values
        with gc_paused():
            self._fill_dictionaries(bulk, sites, values)
        self._bulk = None

    def _fill_dictionaries(self, bulk: BulkStore, sites: list[Site], values: list[Any]) -> None:
        """The dictionaries of the store's sites (in order, as Site objects) and hoppings."""
        for site, v in zip(sites, bulk.val.tolist()):
            self._d_sites[site] = values[v]
            self._d_adjacent[site] = set()
        ha, hb, hv = bulk.merge_hoppings()
        adjacent = self._d_adjacent
        hoppings = self._d_hoppings
        for a, b, v in zip(ha.tolist(), hb.tolist(), hv.tolist()):
            sa, sb = sites[a], sites[b]
            hoppings[sa, sb] = values[v]
            adjacent[sa].add(sb)
            adjacent[sb].add(sa)

    @property
    def _sites(self) -> dict[Site, Any]:
        self._materialize()
        return self._d_sites

    @_sites.setter
    def _sites(self, sites: dict[Site, Any]) -> None:
        self._materialize()
        self._d_sites = sites

    @property
    def _hoppings(self) -> dict[tuple[Site, Site], Any]:
        self._materialize()
        return self._d_hoppings

    @_hoppings.setter
    def _hoppings(self, hoppings: dict[tuple[Site, Site], Any]) -> None:
        self._materialize()
        self._d_hoppings = hoppings

    @property
    def _adjacent(self) -> dict[Site, set[Site]]:
        self._materialize()
        return self._d_adjacent

    @_adjacent.setter
    def _adjacent(self, adjacent: dict[Site, set[Site]]) -> None:
        self._materialize()
        self._d_adjacent = adjacent

    def _bulk_store(self) -> BulkStore | None:
        """The array store, or None once the dictionaries hold the contents (a script
        that works site by site, with lookups in between, is better served by them)."""
        bulk = self.__dict__.get("_bulk")
        if bulk is not None and bulk.small_merges > 16:
            self._materialize()
            return None
        return bulk

    @property
    def symmetry(self) -> Any:
        """The Builder's symmetry as given: ``None`` (finite), a :class:`NoSymmetry` (also
        finite) or a :class:`TranslationalSymmetry` (a lead)."""
        return self._given_symmetry

    @symmetry.setter
    def symmetry(self, symmetry: Any) -> None:
        if symmetry is not None and not isinstance(symmetry, Symmetry):
            raise TypeError(
                "symmetry must be a Symmetry (e.g. a TranslationalSymmetry), NoSymmetry or "
                f"None, got {type(symmetry).__name__}"
            )
        # Any Symmetry subclass works (Kwant's abstract interface: num_directions, which,
        # act, has_subgroup, subgroup); TranslationalSymmetry is the usual one. NoSymmetry
        # is kept as given (as Kwant's) and treated as finite, as Builder() is.
        self._given_symmetry = symmetry
        self._symmetry: Any = None if isinstance(symmetry, NoSymmetry) else symmetry
        if self._symmetry is not None and self.__dict__.get("_bulk") is not None:
            self._materialize()

    # ---- canonical forms -------------------------------------------------------------

    def _canonical_site(self, site: Site) -> Site:
        if self._symmetry is None:
            return site
        return self._symmetry.to_fd(site)

    def _canonical_pair(self, a: Site, b: Site) -> tuple[Site, Site]:
        if self._symmetry is None:
            return a, b
        return self._symmetry.to_fd(a, b)

    def _find_hopping(self, a: Site, b: Site) -> tuple[tuple[Site, Site], bool] | None:
        """Stored key for hopping (a, b) and whether it is stored reversed."""
        key = self._canonical_pair(a, b)
        if key in self._hoppings:
            return key, False
        rkey = self._canonical_pair(b, a)
        if rkey in self._hoppings:
            return rkey, True
        return None

    # ---- item access -----------------------------------------------------------------

    def _expand(self, key: Any) -> Iterator[Any]:
        """Yield the individual sites and hoppings a key stands for.

        A key is a site, a hopping (a pair of sites), a HoppingKind or shape, a function
        of the builder returning a key (as in Kwant: e.g. the hoppings that cross a branch
        cut), or an iterable of keys.
        """
        if isinstance(key, Site):
            yield key
        elif isinstance(key, tuple):
            # A tuple is a hopping, as in Kwant (several sites are given as a list).
            yield _checked_hopping(key)
        elif isinstance(key, (HoppingKind, Shape)):
            yield from list(key(self))
        elif isinstance(key, (SiteFamily, Polyatomic)):
            raise TypeError(
                f"a lattice is not a Builder key, got {_described(key)}: give sites, e.g. "
                "lat.shape(function, start), or hoppings, e.g. lat.neighbors()"
            )
        elif callable(key) and not isinstance(key, Iterable):
            yield from self._expand(key(self))
        elif isinstance(key, (str, bytes)) or not isinstance(key, Iterable):
            raise TypeError(
                "Builder keys are sites, pairs of sites (hoppings), HoppingKinds, shapes, "
                "functions of the builder returning these, or iterables of these; got "
                f"{_described(key)}"
            )
        else:
            items = list(key)
            if items and isinstance(items[0], (Site, tuple)):
                # As in Kwant: a sequence of sites or of hoppings, not a mixture.
                first_is_site = isinstance(items[0], Site)
                for item in items:
                    if first_is_site and not isinstance(item, Site):
                        raise TypeError(
                            f"a sequence of sites contains {_described(item)}, which is not a site"
                        )
                    if not first_is_site and not isinstance(item, tuple):
                        raise TypeError(
                            f"a sequence of hoppings contains {_described(item)}, which is not a "
                            "hopping (a pair of sites)"
                        )
            for item in items:
                yield from self._expand(item)

    def __setitem__(self, key: Any, value: Any) -> None:
        bulk = self._bulk_store()
        if bulk is not None:
            kind = type(key)
            if kind is tuple and len(key) == 2 and not isinstance(value, HermConjOfFunc):
                # One hopping (a script's loop): the shortest road.
                a, b = key
                if (
                    type(a) is Site
                    and type(b) is Site
                    and (callable(value) or type(value) in _NUMBERS)
                    and bulk.set_hopping(a, b, bulk.value_number(value))
                ):
                    return
            key = self._bulk_set(bulk, key, value)
            if key is _DONE:
                return
        items = list(self._expand(key))
        for item in items:
            if isinstance(item, Site):
                self._set_site(item, value)
            else:
                self._set_hopping(item[0], item[1], value)

    # ---- the array store's fast paths --------------------------------------------------

    def _bulk_set(self, bulk: BulkStore, key: Any, value: Any) -> Any:
        """Set what the key stands for in the array store. Returns ``_DONE``, or the key
        (a generator read into a list) for the dictionaries to handle, once they hold the
        contents: anything but sites, hoppings, hopping kinds and lattice shapes."""
        try:
            if isinstance(key, Site):
                bulk.add_site(key, _check_value(value, lambda: f"onsite of {_described(key)}"))
                return _DONE
            if isinstance(key, tuple):
                self._bulk_hoppings(bulk, [_checked_hopping(key)], value)
                return _DONE
            if isinstance(key, HoppingKind):
                self._bulk_kind(bulk, key, value)
                return _DONE
            if type(key) is Shape:
                blocks = key._fill_arrays()
                if blocks is None:
                    raise NotBulk
                self._bulk_blocks(bulk, blocks, value)
                return _DONE
            if (
                isinstance(key, (SiteFamily, Polyatomic, str, bytes))
                or not isinstance(key, Iterable)
                or callable(key)
            ):
                raise NotBulk
        except NotBulk:
            self._materialize()
            return key
        items = key if isinstance(key, list) else list(key)
        if not items:
            return _DONE
        if all(isinstance(item, Site) for item in items):
            kind: Any = self._bulk_sites
        elif all(
            type(item) is tuple
            and len(item) == 2
            and isinstance(item[0], Site)
            and isinstance(item[1], Site)
            for item in items
        ):
            kind = self._bulk_hoppings
        elif all(isinstance(item, HoppingKind) for item in items):
            for k, item in enumerate(items):
                try:
                    self._bulk_kind(bulk, item, value)
                except NotBulk:
                    self._materialize()
                    return items[k:]
            return _DONE
        else:
            # A mixture, or items for the dictionaries (which also give Kwant's errors).
            self._materialize()
            return items
        try:
            kind(bulk, items, value)
        except NotBulk:
            self._materialize()
            return items
        return _DONE

    def _bulk_sites(self, bulk: BulkStore, sites: list[Site], value: Any) -> None:
        if not sites:
            return
        fams, tags = bulk.site_rows(sites)
        value = _check_value(value, lambda: f"onsite of {_described(sites[0])}")
        bulk.add_sites(fams, tags, bulk.value_number(value))

    def _bulk_blocks(
        self, bulk: BulkStore, blocks: Sequence[tuple[SiteFamily, NDArray[np.int64]]], value: Any
    ) -> None:
        blocks = [(fam, tags) for fam, tags in blocks if len(tags)]
        if not blocks:
            return
        first_fam, first_tags = blocks[0]
        first = Site(first_fam, tuple(int(t) for t in first_tags[0]))
        value = _check_value(value, lambda: f"onsite of {_described(first)}")
        number = bulk.value_number(value)
        for fam, tags in blocks:
            f = bulk.family_number(fam, tags.shape[1])
            bulk.add_sites(np.full(len(tags), f, dtype=np.int32), tags, number)

    def _bulk_hoppings(self, bulk: BulkStore, pairs: list[tuple[Site, Site]], value: Any) -> None:
        if not pairs:
            return
        # As the dictionaries (which expand the key first): a hopping from a site to itself
        # anywhere in the list refuses the whole list before anything is set.
        for pair in pairs:
            if pair[0] == pair[1]:
                _checked_hopping(pair)
        if isinstance(value, HermConjOfFunc):
            pairs = [(b, a) for a, b in pairs]
            value = value.function
            first = pairs[0][::-1]
        else:
            first = pairs[0]
        value = _check_value(value, lambda: f"hopping {_described(first)}")
        if len(pairs) <= 8:
            # One by one, as a script sets them: no merge of the sites set just before.
            number = bulk.value_number(value)
            for site_a, site_b in pairs:
                if not bulk.set_hopping(site_a, site_b, number):
                    self._refuse_hopping(site_a, site_b, value)
            return
        a = bulk.rows_of([pair[0] for pair in pairs])
        b = bulk.rows_of([pair[1] for pair in pairs])
        bad = np.flatnonzero((a < 0) | (b < 0) | (a == b))
        stop = int(bad[0]) if len(bad) else len(pairs)
        bulk.add_hoppings(a[:stop], b[:stop], bulk.value_number(value))
        if stop < len(pairs):
            self._refuse_hopping(*pairs[stop], value)  # the hoppings before it are set

    def _refuse_hopping(self, a: Site, b: Site, value: Any) -> NoReturn:
        """Raise the dictionaries' error for a hopping the array store cannot set (a site
        that is not in the Builder), with their message."""
        self._materialize()
        self._set_hopping(a, b, value)
        raise AssertionError(f"hopping {_described((a, b))} should have been refused")

    def _bulk_kind(self, bulk: BulkStore, kind: HoppingKind, value: Any) -> None:
        """``builder[kind] = value``: every hopping of the kind between sites present."""
        fam_a, fam_b, delta = kind.family_a, kind.family_b, kind.delta
        bulk.merge()
        fa, fb = bulk.known_family(fam_a), bulk.known_family(fam_b)
        if fa < 0 or fb < 0:
            return
        length = bulk.tag_length[fa]
        if len(delta) != length:
            raise ValueError(
                f"HoppingKind delta {delta} has {len(delta)} entries but sites of "
                f"{fam_a.name or 'this family'} have {length} coordinates"
            )
        a = np.flatnonzero(bulk.fam == fa)
        tags_b = bulk.tags[a, : bulk.tag_length[fb]] - np.asarray(delta, dtype=np.int64)
        b = bulk.find(fb, tags_b)
        present = b >= 0
        a, b = a[present], b[present]
        if not len(a):
            return
        if isinstance(value, HermConjOfFunc):
            a, b, value = b, a, value.function
        first = (a[0], b[0])
        if np.any(a == b):
            raise NotBulk  # a zero delta: the dictionaries refuse it with their message
        names = bulk.make_sites(np.array(first))
        value = _check_value(value, lambda: f"hopping {_described((names[0], names[1]))}")
        bulk.add_hoppings(a, b, bulk.value_number(value))

    def _set_site(self, site: Site, value: Any) -> None:
        value = _check_value(value, lambda: f"onsite of {_described(site)}")
        site = self._canonical_site(site)
        self._sites[site] = value
        self._adjacent.setdefault(site, set())

    def _set_hopping(self, a: Site, b: Site, value: Any) -> None:
        if isinstance(value, HermConjOfFunc):
            a, b, value = b, a, value.function
        value = _check_value(value, lambda: f"hopping {_described((a, b))}")
        ca, cb = self._canonical_site(a), self._canonical_site(b)
        for s in (ca, cb):
            if s not in self._sites:
                raise KeyError(
                    f"cannot set hopping {_described((a, b))}: site {_described(s)} is not in "
                    "the Builder (add the site before its hoppings)"
                )
        if ca == cb and (self._symmetry is None or a == b):
            raise ValueError(
                f"hopping {_described((a, b))} connects a site to itself; set the onsite value"
            )
        found = self._find_hopping(a, b)
        if found is not None:
            del self._hoppings[found[0]]
        key = self._canonical_pair(a, b)
        self._hoppings[key] = value
        ka, kb = key
        self._adjacent[ka].add(kb)
        rka, rkb = self._canonical_pair(kb, ka)
        self._adjacent[rka].add(rkb)

    def _bulk_get(self, bulk: BulkStore, key: Any) -> Any:
        """``builder[key]`` from the array store: (True, value) or (False, None)."""
        if isinstance(key, Site):
            return bulk.site_value(key)
        a, b = _checked_hopping(key)
        ra, rb = bulk.find_site(a), bulk.find_site(b)
        found = bulk.find_hopping(ra, rb) if ra >= 0 and rb >= 0 and ra != rb else None
        if found is None:
            return False, None
        k, reverse = found
        value = bulk.values[int(bulk.merge_hoppings()[2][k])]
        if not reverse:
            return True, value
        return True, (HermConjOfFunc(value) if callable(value) else herm_conj(value))

    def __getitem__(self, key: Any) -> Any:
        bulk = self._bulk_store()
        if bulk is not None and isinstance(key, (Site, tuple)):
            try:
                present, value = self._bulk_get(bulk, key)
            except NotBulk:
                self._materialize()
            else:
                if present:
                    return value
                what = "site" if isinstance(key, Site) else "hopping"
                raise KeyError(f"{what} {_described(key)} is not in the Builder")
        if isinstance(key, Site):
            site = self._canonical_site(key)
            if site not in self._sites:
                raise KeyError(f"site {_described(key)} is not in the Builder")
            return self._sites[site]
        if isinstance(key, tuple):
            key = _checked_hopping(key)
            found = self._find_hopping(*key)
            if found is None:
                raise KeyError(f"hopping {_described(key)} is not in the Builder")
            stored, reverse = found
            value = self._hoppings[stored]
            if not reverse:
                return value
            if callable(value):
                return HermConjOfFunc(value)
            return herm_conj(value)
        raise TypeError(f"Builder keys are sites or pairs of sites, got {_described(key)}")

    def __contains__(self, key: Any) -> bool:
        bulk = self._bulk_store()
        if bulk is not None and isinstance(key, (Site, tuple)):
            try:
                return bool(self._bulk_get(bulk, key)[0])
            except NotBulk:
                self._materialize()
        if isinstance(key, Site):
            return self._canonical_site(key) in self._sites
        if isinstance(key, tuple):
            return self._find_hopping(*_checked_hopping(key)) is not None
        raise TypeError(
            f"a Builder holds sites and hoppings (pairs of sites), got {_described(key)}"
        )

    def __delitem__(self, key: Any) -> None:
        bulk = self._bulk_store()
        if bulk is not None:
            items = [key] if isinstance(key, Site) else key
            if isinstance(items, Iterable) and not isinstance(items, (str, bytes, tuple)):
                items = list(items)
                if all(isinstance(item, Site) for item in items):
                    try:
                        self._bulk_delete(bulk, items)
                        return
                    except NotBulk:
                        pass
                key = items
            self._materialize()
        for item in list(self._expand(key)):
            if isinstance(item, Site):
                self._delete_site(item)
            else:
                found = self._find_hopping(*item)
                if found is None:
                    raise KeyError(f"hopping {_described(item)} is not in the Builder")
                self._delete_hopping(found[0])

    def _bulk_delete(self, bulk: BulkStore, sites: list[Site]) -> None:
        """Delete sites (and their hoppings) from the array store, in order: the ones
        before a site that is absent are deleted, as one by one."""
        if not sites:
            return
        rows = bulk.rows_of(sites)
        missing = np.flatnonzero(rows < 0)
        stop = int(missing[0]) if len(missing) else len(sites)
        # A site listed twice is absent the second time.
        _, first = np.unique(rows[:stop], return_index=True)
        if len(first) < stop:
            stop = int(np.setdiff1d(np.arange(stop), first)[0])
        bulk.remove(rows[:stop])
        if stop < len(sites):
            raise KeyError(f"site {_described(sites[stop])} is not in the Builder")

    def _delete_hopping(self, key: tuple[Site, Site]) -> None:
        del self._hoppings[key]
        a, b = key
        self._adjacent[a].discard(b)
        ra, rb = self._canonical_pair(b, a)
        self._adjacent[ra].discard(rb)

    def _delete_site(self, site: Site) -> None:
        site = self._canonical_site(site)
        if site not in self._sites:
            raise KeyError(f"site {_described(site)} is not in the Builder")
        for other in list(self._adjacent[site]):
            found = self._find_hopping(site, other)
            if found is not None:
                self._delete_hopping(found[0])
        del self._sites[site]
        del self._adjacent[site]

    def _counts(self) -> tuple[int, int]:
        bulk = self._bulk_store()
        if bulk is not None:
            try:
                return bulk.num_sites, bulk.num_hoppings
            except NotBulk:
                self._materialize()
        return len(self._sites), len(self._hoppings)

    def __len__(self) -> int:
        return sum(self._counts())

    def __repr__(self) -> str:
        kind = "lead " if self._symmetry is not None else ""
        num_sites, num_hoppings = self._counts()
        return (
            f"<{kind}Builder with {num_sites} sites, {num_hoppings} hoppings"
            f" and {len(self.leads)} leads>"
        )

    # ---- inspection ------------------------------------------------------------------

    def sites(self) -> KeysView[Site]:
        """All sites (for a lead, those of the fundamental domain), as a read-only live view
        (sized, iterable, a set; as Kwant's). Copy it (``list(builder.sites())``) before
        adding or deleting sites in a loop over it."""
        return self._sites.keys()

    def hoppings(self) -> Iterator[tuple[Site, Site]]:
        """All hoppings, each once, as ``(a, b)`` meaning ``<a|H|b>``."""
        return iter(list(self._hoppings))

    def site_value_pairs(self) -> Iterator[tuple[Site, Any]]:
        return iter(list(self._sites.items()))

    def hopping_value_pairs(self) -> Iterator[tuple[tuple[Site, Site], Any]]:
        return iter(list(self._hoppings.items()))

    def neighbors(self, site: Site) -> Iterator[Site]:
        """Sites connected to `site` by a hopping."""
        site_fd = self._canonical_site(_checked_site(site))
        if site_fd not in self._sites:
            raise KeyError(f"site {_described(site)} is not in the Builder")
        if self._symmetry is None:
            return iter(list(self._adjacent[site_fd]))
        sym = self._symmetry
        if isinstance(sym, TranslationalSymmetry):
            element = sym._domain_ints(site)
            return iter([sym._shift_ints(element, s) for s in self._adjacent[site_fd]])
        n = sym.which(site)
        return iter([sym.act(n, s) for s in self._adjacent[site_fd]])

    def degree(self, site: Site) -> int:
        """Number of hoppings attached to `site`."""
        return len(list(self.neighbors(site)))

    def dangling(self) -> list[Site]:
        """Sites with fewer than two neighbours."""
        return [s for s in self._sites if len(self._adjacent[s]) < 2]

    def eradicate_dangling(self) -> None:
        """Repeatedly remove sites with fewer than two neighbours."""
        bulk = self._bulk_store()
        if bulk is not None:
            try:
                bulk.merge()
                while True:
                    rows = np.flatnonzero(bulk.degrees() < 2)
                    if not len(rows):
                        return
                    bulk.remove(rows)
            except NotBulk:
                self._materialize()
        while True:
            dangling = self.dangling()
            if not dangling:
                return
            for site in dangling:
                if site in self._sites:
                    self._delete_site(site)

    def substituted(self, **substitutions: str) -> Builder:
        """A copy whose value functions take some parameters under new names.

        ``lead.substituted(peierls="peierls_lead")`` makes every value function that
        takes a parameter ``peierls`` receive the solve-time parameter
        ``peierls_lead`` instead, as in Kwant; useful to give leads their own values.

        Parameters
        ----------
        **substitutions : str
            ``old_name="new_name"`` pairs.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain()
        >>> syst = meso.Builder()
        >>> syst[lat(0)] = lambda site, v: v
        >>> renamed = syst.substituted(v="v_dot")
        >>> renamed.finalized().hamiltonian_submatrix(params={"v_dot": 3.0}).real.tolist()
        [[3.0]]
        """
        for old, new in substitutions.items():
            if not isinstance(new, str) or not new.isidentifier():
                raise ValueError(
                    f"substitution {old}={new!r}: the new name must be a valid identifier"
                )
        targets = list(substitutions.values())
        if len(set(targets)) != len(targets):
            raise ValueError(f"substitutions map two parameters onto one name: {substitutions}")
        if self.leads:
            raise ValueError(
                "substituted() cannot be applied to a Builder with leads attached (whether "
                "the leads should be renamed too is ambiguous); substitute the lead "
                "Builders before attaching them"
            )
        self._check_substitutions(substitutions)
        result = Builder(
            self.symmetry,
            conservation_law=self.conservation_law,
            time_reversal=self.time_reversal,
            particle_hole=self.particle_hole,
            chiral=self.chiral,
            vectorize=self.vectorize,
        )

        def rename(value: Any) -> Any:
            return _Substituted(value, substitutions) if callable(value) else value

        result._sites = {site: rename(value) for site, value in self._sites.items()}
        result._hoppings = {key: rename(value) for key, value in self._hoppings.items()}
        result._adjacent = {site: set(nbrs) for site, nbrs in self._adjacent.items()}
        result.leads = list(self.leads)
        return result

    def _check_substitutions(self, substitutions: dict[str, str]) -> None:
        """Refuse renamings that give a value function two arguments of one name; warn,
        as Kwant does, about names that no value function takes."""
        used: set[str] = set()
        for n_sites, values in ((1, self._sites.values()), (2, self._hoppings.values())):
            functions = {id(v): v for v in values if callable(v)}
            for function in functions.values():
                try:
                    arguments = list(inspect.signature(function).parameters.values())
                except (TypeError, ValueError):
                    continue
                site_names = [p.name for p in arguments[:n_sites]]
                names = [
                    p.name
                    for p in arguments[n_sites:]
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                ]
                used.update(old for old in substitutions if old in names)
                renamed = [substitutions.get(name, name) for name in names]
                for name in renamed:
                    if renamed.count(name) > 1 or name in site_names:
                        raise ValueError(
                            f"the substitutions {substitutions} give the value function "
                            f"{getattr(function, '__name__', function)!r} two arguments "
                            f"named {name!r}"
                        )
        unused = [old for old in substitutions if old not in used]
        if unused:
            warnings.warn(
                f"substituted: no value function takes the parameter(s) {unused}",
                RuntimeWarning,
                stacklevel=3,
            )

    def update(self, other: Builder) -> None:
        """Copy the sites, hoppings and leads of `other` into this Builder, as Kwant.

        Values of `other` overwrite those already here; its leads are appended to
        :attr:`leads`. Both Builders must have the same symmetry.
        """
        if not isinstance(other, Builder):
            raise TypeError(f"update takes a Builder, got {type(other).__name__}")
        mine: Symmetry = NoSymmetry() if self._symmetry is None else self._symmetry
        theirs: Symmetry = NoSymmetry() if other._symmetry is None else other._symmetry
        if not (mine.has_subgroup(theirs) and theirs.has_subgroup(mine)):
            raise ValueError(
                f"update needs Builders with equal symmetries, got {mine!r} and {theirs!r}"
            )
        for site, value in other.site_value_pairs():
            self[site] = value
        for hop, value in other.hopping_value_pairs():
            self[hop] = value
        self.leads.extend(other.leads)

    def expand(self, key: Any) -> Iterator[Any]:
        """The sites and hoppings (pairs of sites) that a Builder key stands for.

        A key is a site, a hopping, a :class:`HoppingKind`, a lattice shape, a function of
        the Builder returning a key, or an iterable of keys (expanded recursively), as
        in Kwant.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain(norbs=1)
        >>> syst = meso.Builder()
        >>> syst[(lat(i) for i in range(3))] = 0
        >>> len(list(syst.expand(lat.neighbors())))
        2
        """
        return iter(list(self._expand(key)))

    def closest(self, pos: ArrayLike) -> Site:
        """The site of this Builder (or, for a lead, of its periodic continuation) that is
        closest to the real-space position `pos`.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.square(norbs=1)
        >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
        >>> lead[(lat(0, y) for y in range(3))] = 0
        >>> lead.closest((-7.2, 1.1)).tag
        (-7, 1)
        """
        if not self._sites:
            raise ValueError("the Builder has no sites")
        point = np.asarray(pos, dtype=float).ravel()
        best: Site | None = None
        best_d = np.inf
        sym = self._symmetry
        periods = None if sym is None else sym.periods
        for site in self._sites:
            site_pos = np.asarray(site.pos, dtype=float)
            if site_pos.shape != point.shape:
                raise ValueError(
                    f"pos must have {site_pos.size} coordinates (as the sites), got {point.size}"
                )
            candidate = site
            if periods is not None and sym is not None:
                element = _closest_translation(periods, point - site_pos)
                candidate = sym.act(tuple(int(x) for x in element), site)
            d = float(np.sum((np.asarray(candidate.pos) - point) ** 2))
            if d < best_d:
                best, best_d = candidate, d
        assert best is not None
        return best

    def reversed(self) -> Builder:
        """A copy of this lead Builder with the opposite symmetry direction.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
        >>> lead.reversed().symmetry.period.tolist()
        [1.0]
        """
        if self._symmetry is None:
            raise ValueError("only a Builder with a symmetry (a lead) can be reversed")
        result = Builder(
            self._symmetry.reversed(),
            conservation_law=self.conservation_law,
            time_reversal=self.time_reversal,
            particle_hole=self.particle_hole,
            chiral=self.chiral,
            vectorize=self.vectorize,
        )
        for site, value in self._sites.items():
            result._sites[result._canonical_site(site)] = value
            result._adjacent.setdefault(result._canonical_site(site), set())
        for (a, b), value in self._hoppings.items():
            key = result._canonical_pair(a, b)
            result._hoppings[key] = value
            result._adjacent[key[0]].add(key[1])
            ra, rb = result._canonical_pair(key[1], key[0])
            result._adjacent[ra].add(rb)
        return result

    # ---- leads -----------------------------------------------------------------------

    def fill(
        self,
        template: Builder,
        shape: Callable[[Site], bool],
        start: Any,
        *,
        max_sites: float = 10**7,
    ) -> list[Site]:
        """Flood-fill this Builder with the sites and hoppings of a template, as in Kwant.

        Starting from ``start``, the template's hopping graph is walked and every site for
        which ``shape(site)`` is true is copied here with its onsite value, together with
        its hoppings to sites already here. The walk stops at sites outside the shape and
        at sites this Builder already has (so existing values are kept).

        Parameters
        ----------
        template : Builder
            Usually a Builder with a translational symmetry of the whole lattice, e.g.
            ``Builder(TranslationalSymmetry(*lat.prim_vecs))`` with its onsite and
            hopping values set once.
        shape : callable
            ``shape(site) -> bool``; with a symmetry here (a lead), it must be invariant
            under it.
        start : Site, iterable of Site, or a position
            Where the walk starts; a real-space position stands for the template's site
            closest to it.
        max_sites : number, keyword-only
            Stop with ``RuntimeError`` beyond this many new sites (an unbounded shape).

        Start sites that the template lacks, that lie outside the shape or that this
        Builder already has are skipped with a ``RuntimeWarning`` (so a repeated fill
        adds nothing), as in Kwant.

        Returns
        -------
        list of Site
            The sites added (for a lead, in its fundamental domain).

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.square(norbs=1)
        >>> template = meso.Builder(meso.TranslationalSymmetry(*lat.prim_vecs))
        >>> template[lat(0, 0)] = 4.0
        >>> template[lat.neighbors()] = -1.0
        >>> syst = meso.Builder()
        >>> added = syst.fill(template, lambda s: abs(s.pos[0]) < 3 and 0 <= s.pos[1] < 2,
        ...                   (0, 0))
        >>> len(added), len(list(syst.hoppings()))
        (10, 13)
        """
        if not isinstance(template, Builder):
            raise TypeError(f"template must be a Builder, got {type(template).__name__}")
        if not callable(shape):
            raise TypeError(f"shape must be a function of a site, got {shape!r}")
        if isinstance(max_sites, bool) or not isinstance(max_sites, (int, float)):
            raise TypeError(f"max_sites must be a positive number, got {max_sites!r}")
        if not max_sites > 0:
            raise ValueError(f"max_sites must be positive, got {max_sites!r}")
        queue = self._fill_start(template, start)
        _skip_start_sites([site for site in queue if not shape(site)], "outside the shape", 2)
        queue = [site for site in queue if shape(site)]
        bulk = self._bulk_store()
        if bulk is not None and queue:
            try:
                with gc_paused():
                    return self._bulk_fill(bulk, template, shape, queue, max_sites)
            except NotBulk:
                self._materialize()
        added: list[Site] = []
        seen = set(queue)
        while queue:
            site = queue.pop()
            if site in self or not shape(site):
                continue
            if len(added) >= max_sites:
                raise RuntimeError(
                    f"Builder.fill added {max_sites} sites without closing the shape; is "
                    "it bounded (or invariant under this Builder's symmetry)?"
                )
            self[site] = template[site]
            added.append(self._canonical_site(site))
            for neighbor in template.neighbors(site):
                if neighbor in self:
                    if (site, neighbor) not in self:
                        self._copy_hopping(template, site, neighbor)
                elif neighbor not in seen:
                    seen.add(neighbor)
                    queue.append(neighbor)
        return added

    def _bulk_fill(
        self,
        bulk: BulkStore,
        template: Builder,
        shape: Callable[[Site], bool],
        starts: list[Site],
        max_sites: float,
    ) -> list[Site]:
        """fill() into the array store, a whole front of the walk at a time.

        The same sites and hoppings as the site-by-site walk: every template site
        reachable from the start through sites inside the shape and not already here,
        with the template's hoppings among them and to the sites already here (in the
        direction the template stores them). Only the order of the walk differs.
        """
        sym = template._symmetry
        if not isinstance(sym, TranslationalSymmetry):
            raise NotBulk
        cell = list(template._sites)
        n_cell = len(cell)
        index = {site: i for i, site in enumerate(cell)}
        ptr, nb_j, nb_dm, nb_forward, nb_value = [0], [], [], [], []
        for site in cell:
            for other in template._adjacent[site]:
                nb_j.append(index[sym.to_fd(other)])
                nb_dm.append(sym._domain_ints(other))
                found = template._find_hopping(site, other)
                assert found is not None
                key, reverse = found
                nb_forward.append(not reverse)
                nb_value.append(template._hoppings[key])
            ptr.append(len(nb_j))
        nd = sym.num_directions
        ptr_a = np.array(ptr, dtype=np.int64)
        j_a = np.array(nb_j, dtype=np.int64)
        dm_a = np.array(nb_dm, dtype=np.int64).reshape(len(nb_j), nd)
        width = max(len(site.tag) for site in cell)
        fams = np.array(
            [bulk.family_number(site.family, len(site.tag)) for site in cell], dtype=np.int64
        )
        fd_tags = np.zeros((n_cell, width), dtype=np.int64)
        shifts = np.zeros((n_cell, nd, width), dtype=np.int64)
        for i, site in enumerate(cell):
            fd_tags[i, : len(site.tag)] = site.tag
            shifts[i, :, : len(site.tag)] = sym._tag_shifts(site.family)
        packed = _PackedTags(width)

        def tags_of(j: NDArray[np.int64], m: NDArray[np.int64]) -> NDArray[np.int64]:
            return fd_tags[j] + np.einsum("nk,nkw->nw", m, shifts[j])

        def encode(j: NDArray[np.int64], tags: NDArray[np.int64]) -> NDArray[np.int64]:
            keys = packed.encode(fams[j], tags)
            if keys is None:
                raise NotBulk  # tags (or family numbers) too large for the keys
            return keys

        families = bulk.families
        lengths = bulk.tag_length
        bulk.merge()
        start_j = np.array([index[sym.to_fd(s)] for s in starts], dtype=np.int64)
        start_m = np.array([sym._domain_ints(s) for s in starts], dtype=np.int64).reshape(-1, nd)
        start_keys = encode(start_j, tags_of(start_j, start_m))
        _, first = np.unique(start_keys, return_index=True)
        first = np.sort(first)
        front_j, front_m, front_keys = start_j[first], start_m[first], start_keys[first]
        previous = np.zeros(0, dtype=np.int64)
        found_j, found_m = [front_j], [front_m]
        sites_found = [starts[k] for k in first.tolist()]
        total = len(front_j)
        while len(front_j):
            entry, counts = _row_entries(ptr_a, front_j)
            head_j = j_a[entry]
            head_m = np.repeat(front_m, counts, axis=0) + dm_a[entry]
            head_tags = tags_of(head_j, head_m)
            keys = encode(head_j, head_tags)
            fresh = ~(np.isin(keys, previous) | np.isin(keys, front_keys))
            ask = np.flatnonzero(fresh)
            here = bulk.find(fams[head_j[ask]].astype(np.int32), head_tags[ask])
            ask = ask[here < 0]
            _, first = np.unique(keys[ask], return_index=True)
            ask = ask[np.sort(first)]
            candidates = _sites_with_positions(
                families, lengths, fams[head_j[ask]], head_tags[ask]
            )
            inside = np.array([bool(shape(c)) for c in candidates], dtype=bool)
            new = ask[inside] if len(ask) else ask
            kept = [c for c, keep in zip(candidates, inside.tolist()) if keep]
            for site in kept:
                # The position was for the shape; a site kept by the caller recomputes it.
                _del_site_pos(site)
            sites_found.extend(kept)
            total += len(new)
            if total > max_sites:
                raise RuntimeError(
                    f"Builder.fill added {max_sites} sites without closing the shape; is "
                    "it bounded (or invariant under this Builder's symmetry)?"
                )
            previous, front_keys = front_keys, keys[new]
            front_j, front_m = head_j[new], head_m[new]
            found_j.append(front_j)
            found_m.append(front_m)
        all_j = np.concatenate(found_j)
        all_m = np.concatenate(found_m)
        all_tags = tags_of(all_j, all_m)
        all_keys = encode(all_j, all_tags)
        # The hoppings of the new sites: to sites already here, and among themselves once.
        entry, counts = _row_entries(ptr_a, all_j)
        tail = np.repeat(np.arange(len(all_j)), counts)
        head_j = j_a[entry]
        head_tags = tags_of(head_j, np.repeat(all_m, counts, axis=0) + dm_a[entry])
        head_keys = encode(head_j, head_tags)
        order = np.argsort(all_keys)
        at = np.minimum(np.searchsorted(all_keys[order], head_keys), len(order) - 1)
        head_new = np.where(all_keys[order][at] == head_keys, order[at], -1)
        head_old = np.full(len(head_j), -1, dtype=np.int64)
        old = np.flatnonzero(head_new < 0)
        head_old[old] = bulk.find(fams[head_j[old]].astype(np.int32), head_tags[old])
        keep = (head_old >= 0) | (head_new > tail)
        # The new sites, with the template's values.
        numbers = np.array([bulk.value_number(template._sites[s]) for s in cell], dtype=np.int64)
        bulk.add_sites(fams[all_j].astype(np.int32), all_tags, numbers[all_j])
        bulk.merge()
        rows = bulk.find(fams[all_j].astype(np.int32), all_tags)
        tail_rows = rows[tail[keep]]
        head_rows = np.where(
            head_old[keep] >= 0, head_old[keep], rows[np.maximum(head_new, 0)[keep]]
        )
        forward = np.array(nb_forward, dtype=bool)[entry[keep]]
        values = np.array([bulk.value_number(v) for v in nb_value], dtype=np.int64)
        bulk.add_hoppings(
            np.where(forward, tail_rows, head_rows),
            np.where(forward, head_rows, tail_rows),
            values[entry[keep]],
        )
        return sites_found

    def _copy_hopping(self, template: Builder, a: Site, b: Site) -> None:
        """Copy the template's hopping between `a` and `b` in the direction it stores it
        (so a copy made by :meth:`fill` holds the same values, not their conjugates)."""
        found = template._find_hopping(a, b)
        assert found is not None
        key, reverse = found
        value = template._hoppings[key]
        if reverse:
            self[b, a] = value
        else:
            self[a, b] = value

    def _fill_start(self, template: Builder, start: Any) -> list[Site]:
        """The start sites of :meth:`fill`, all in the template."""
        if isinstance(start, Site):
            sites = [start]
        else:
            items = list(start) if isinstance(start, Iterable) else []
            if all(isinstance(item, Site) for item in items) and (
                items or isinstance(start, (list, tuple))
            ):
                sites = items
            else:
                # A position stands for the template's site closest to it, as in Kwant.
                if not template._sites:
                    _skip_start_sites([start], "of an empty template", 3)
                    return []
                sites = [template.closest(start)]
        # As in Kwant, start sites the template lacks or this Builder already has are
        # skipped with a warning (a repeated fill adds nothing).
        _skip_start_sites(
            [site for site in sites if site not in template], "not in the template", 3
        )
        _skip_start_sites(
            [site for site in sites if site in template and site in self],
            "already in this Builder",
            3,
        )
        return [site for site in sites if site in template and site not in self]

    def attach_lead(
        self, lead_builder: Builder, origin: Site | None = None, add_cells: int = 0
    ) -> list[Site]:
        """Attach a lead to this (finite) Builder.

        The lead's unit cell is bonded to the region's cell furthest along the lead
        direction. Where the region's edge is ragged, the region is extended with copies
        of lead sites (with the lead's values) until it holds every site of that cell
        that hops into the lead, as in Kwant; those sites are the lead's interface.

        Parameters
        ----------
        lead_builder : Builder
            A Builder with a TranslationalSymmetry; its period points away from the
            scattering region.
        origin : Site, optional
            A site of the lead's families used to choose where the lead attaches when
            the system has no site of the lead's families (rarely needed).
        add_cells : int
            Number of additional lead unit cells added to the scattering region.

        Returns
        -------
        list of Site
            The sites added to the scattering region.

        Leads are numbered 0, 1, ... in the order they are attached.
        """
        if self._symmetry is not None:
            raise ValueError("leads can only be attached to a Builder without symmetry")
        if not isinstance(lead_builder, Builder) or lead_builder._symmetry is None:
            raise ValueError(
                "attach_lead needs a Builder with a TranslationalSymmetry (a lead), "
                f"got {lead_builder!r}"
            )
        if lead_builder._symmetry.num_directions != 1:
            raise ValueError(
                "a lead needs a TranslationalSymmetry with one period, got "
                f"{lead_builder._symmetry!r} (a symmetry with several periods makes a "
                "template for Builder.fill)"
            )
        if not lead_builder._sites:
            raise ValueError("the lead Builder has no sites")
        if isinstance(add_cells, bool) or not isinstance(add_cells, int) or add_cells < 0:
            raise ValueError(f"add_cells must be a non-negative integer, got {add_cells!r}")
        lead_builder = _with_nearest_cell_hoppings(lead_builder)
        bulk = self._bulk_store()
        if bulk is not None and origin is None:
            try:
                return self._bulk_attach(bulk, lead_builder, add_cells)
            except NotBulk:
                self._materialize()
        sym = lead_builder._symmetry
        lead_families = {s.family for s in lead_builder._sites}
        domains = {
            _which1(sym, s)
            for s in self._sites
            if s.family in lead_families and sym.to_fd(s) in lead_builder._sites
        }
        if origin is not None:
            domains = {d for d in domains if d <= _which1(sym, origin)}
        if not domains:
            raise ValueError(
                "the lead does not overlap the scattering region: no site of the "
                "region (before `origin`, if given) is a translate of a lead site"
            )
        min_dom, max_dom = min(domains), max(domains) + add_cells
        start = [sym.act((max_dom + 1,), s) for s in lead_builder._sites]
        # Recorded first and applied once the lead is known to attach: a lead that cannot
        # attach leaves the Builder as it was (as the array store's attach does).
        new_sites: dict[Site, Any] = {}
        new_hoppings: dict[tuple[Site, Site], Any] = {}

        def contains(site: Site) -> bool:
            return site in new_sites or site in self._sites

        def add_hopping(a: Site, b: Site, value: Any) -> None:
            new_hoppings.pop((b, a), None)
            new_hoppings.pop((a, b), None)
            new_hoppings[a, b] = value

        extension = _attach_extension(
            lead_builder,
            start,
            min_dom,
            max_dom,
            contains=contains,
            add_site=new_sites.__setitem__,
            add_hopping=add_hopping,
        )
        added, interface = _attach_finish(sym, lead_builder, start, extension, max_dom, contains)
        # The start cell (just outside the region) is not kept, nor hoppings to it.
        start_set = set(start)
        for site, value in new_sites.items():
            if site not in start_set:
                self._attach_site(site, value)
        for (a, b), value in new_hoppings.items():
            if a not in start_set and b not in start_set:
                self._attach_hopping(a, b, value)
        return self._add_lead(lead_builder, interface, added)

    def _bulk_attach(self, bulk: BulkStore, lead_builder: Builder, add_cells: int) -> list[Site]:
        """attach_lead on the array store: the same steps, with the region's sites read
        from arrays."""
        sym = lead_builder._symmetry
        if not isinstance(sym, TranslationalSymmetry):
            raise NotBulk
        lead_sites = lead_builder._sites
        bulk.merge()
        domains: set[int] = set()
        for fam in {s.family for s in lead_sites}:
            f = bulk.known_family(fam)
            if f < 0:
                continue
            rows = np.flatnonzero(bulk.fam == f)
            if not len(rows):
                continue
            tags = bulk.tags[rows, : bulk.tag_length[f]]
            dom = sym._domains(fam, tags)[:, 0]
            fd = tags - dom[:, None] * sym._tag_shifts(fam)[0]
            cell = np.array([s.tag for s in lead_sites if s.family == fam], dtype=np.int64)
            if cell.shape[1:] != fd.shape[1:]:
                raise NotBulk
            domains.update(np.unique(dom[row_membership(fd, cell)]).tolist())
        if not domains:
            raise ValueError(
                "the lead does not overlap the scattering region: no site of the "
                "region (before `origin`, if given) is a translate of a lead site"
            )
        min_dom, max_dom = min(domains), max(domains) + add_cells
        extension, hoppings = _bulk_extension(bulk, lead_builder, min_dom, max_dom)
        start = extension[: len(lead_sites)]
        in_extension = set(extension)

        def contains(site: Site) -> bool:
            return site in in_extension or bulk.find_site(site) >= 0

        added, interface = _attach_finish(sym, lead_builder, start, extension, max_dom, contains)
        values = list(lead_sites.values())
        fd_of_added = hoppings.pop("fd_of_added")
        for site, j in zip(added, fd_of_added):
            bulk.add_site(site, values[j])
        if len(hoppings["tails"]):
            tails, heads = bulk.rows_of(hoppings["tails"]), bulk.rows_of(hoppings["heads"])
            numbers = np.array([bulk.value_number(v) for v in hoppings["values"]], dtype=np.int64)
            bulk.add_hoppings(tails, heads, numbers[hoppings["value_index"]])
        return self._add_lead(lead_builder, interface, added)

    def _add_lead(
        self, lead_builder: Builder, interface: list[Site], added: list[Site]
    ) -> list[Site]:
        """Append the attached lead (warning if it lies on top of another one)."""
        _warn_same_side(
            [
                (lead.builder._symmetry, lead.interface)
                for lead in self.leads
                if isinstance(lead, BuilderLead)
            ],
            lead_builder._symmetry,
            interface,
        )
        self.leads.append(BuilderLead(lead_builder, interface, added))
        return added

    def _attach_site(self, site: Site, value: Any) -> None:
        self._sites[site] = value
        self._adjacent.setdefault(site, set())

    def _attach_hopping(self, a: Site, b: Site, value: Any) -> None:
        found = self._find_hopping(a, b)
        if found is not None:
            self._delete_hopping(found[0])
        self._hoppings[(a, b)] = value
        self._adjacent[a].add(b)
        self._adjacent[b].add(a)

    @overload
    def finalized(
        self: Builder[None], *, spin_degeneracy: int = 1, magnetic_flux: str | None = None
    ) -> System: ...

    @overload
    def finalized(
        self: Builder[TranslationalSymmetry],
        *,
        spin_degeneracy: int = 1,
        magnetic_flux: str | None = None,
    ) -> InfiniteSystem: ...

    def finalized(
        self, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None
    ) -> System | InfiniteSystem:
        """Freeze into an immutable System (or a lead's InfiniteSystem).

        Parameters
        ----------
        spin_degeneracy : {1, 2}
            1 when spin is absent or is an explicit orbital; 2 for a spin-degenerate
            model, which doubles conductances (never applied silently elsewhere).
        magnetic_flux : str, optional
            Name of a parameter giving the magnetic flux through a unit area of the
            xy-plane in units of the flux quantum h/e (for a square lattice of
            constant 1: the flux per plaquette). Every hopping is then multiplied by
            its Peierls phase for a uniform field along +z, in a gauge that is
            translation invariant along each lead (see :mod:`mesoscopic.system`).

        Returns
        -------
        System or InfiniteSystem
        """
        if self._symmetry is not None and self._symmetry.num_directions != 1:
            raise ValueError(
                f"a Builder with {self._symmetry!r} (several periods) cannot be finalized; "
                "use it as a template for Builder.fill"
            )
        if self._symmetry is not None:
            return _finalized_lead(
                self, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
            )
        bulk = self._bulk_store()
        if bulk is not None:
            try:
                return _finalized_bulk(
                    self, bulk, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
                )
            except NotBulk:
                self._materialize()
        return _finalized_system(
            self, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
        )


# --------------------------------------------------------------------------------------
# Finalization: the Builder's parts handed to System and InfiniteSystem
# --------------------------------------------------------------------------------------


def _closest_translation(periods: NDArray[np.float64], offset: NDArray[np.float64]) -> Any:
    """The integer combination ``n`` of the rows of `periods` that makes ``n @ periods``
    closest to `offset` (exact: every candidate in a box that must hold the optimum)."""
    coef, *_ = np.linalg.lstsq(periods.T, offset, rcond=None)
    guess = np.rint(coef).astype(np.int64)
    radius = float(np.linalg.norm(guess @ periods - offset))
    sigma = float(np.linalg.svd(periods, compute_uv=False).min())
    reach = int(np.ceil(radius / sigma)) + 1
    best, best_d = guess, radius**2
    axes = [range(int(np.floor(c - reach)), int(np.ceil(c + reach)) + 1) for c in coef]
    if np.prod([len(a) for a in axes]) > 10**6:
        return guess
    grid = np.array(list(itertools.product(*axes)), dtype=np.int64)
    dist = np.sum((grid @ periods - offset) ** 2, axis=1)
    k = int(np.argmin(dist))
    if dist[k] < best_d:
        best = grid[k]
    return best


def _infer_norbs(builder: Builder) -> dict[SiteFamily, int]:
    """Orbitals per site family: declared, else from constant matrix values, else 1."""
    norbs: dict[SiteFamily, int] = {}
    for site, value in builder.site_value_pairs():
        fam = site.family
        if fam.norbs is not None:
            norbs[fam] = fam.norbs
        elif not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(fam, int(np.shape(value)[0]))
    for (a, b), value in builder.hopping_value_pairs():
        for fam in (a.family, b.family):
            if fam.norbs is not None:
                norbs[fam] = fam.norbs
        if not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(a.family, int(np.shape(value)[0]))
            norbs.setdefault(b.family, int(np.shape(value)[1]))
    return norbs


def _constant_value_orbitals(value: Any) -> int | None:
    """The orbitals a constant onsite value has (1 for a scalar, n for an n x n matrix);
    None for a value function or any other shape (refused when the value is evaluated)."""
    if callable(value):
        return None
    shape = np.shape(value)
    if shape == ():
        return 1
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] > 0:
        return int(shape[0])
    return None


def _warn_overruled_norbs(overruled: dict[SiteFamily, tuple[Site, int]]) -> None:
    """Report declared norbs that constant onsite values overrule (one site per family).
    Called by the finalization functions, so that the warning points at ``finalized()``'s
    caller."""
    for fam, (site, count) in overruled.items():
        warnings.warn(
            f"the site family {fam!r} declares norbs={fam.norbs}, but the onsite value of "
            f"{_described(site)} (and maybe others) is a constant with {count} orbital(s); "
            "such sites get the orbitals of their value, as in Kwant's Hamiltonian (give "
            f"{fam.norbs} x {fam.norbs} matrices, or the lattice norbs={count})",
            RuntimeWarning,
            stacklevel=5,
        )


def _onsite_terms(
    builder: Builder, sites: list[Site], norbs_map: dict[Any, int]
) -> tuple[NDArray[np.int64], tuple[TermGroup, ...]]:
    """Orbital counts of `sites` (in order) and their onsite term groups.

    A site's orbitals are those of its family, except that a constant onsite value of
    another shape (a scalar for ``norbs=5``, a 2 x 2 matrix for ``norbs=1``) gives the site
    the orbitals of its value, as Kwant's Hamiltonian does; a declared ``norbs`` that is
    overruled so is reported by a RuntimeWarning.
    """
    norbs = np.array([norbs_map.get(s.family, 1) for s in sites], dtype=np.int64)
    overruled: dict[SiteFamily, tuple[Site, int]] = {}
    for k, site in enumerate(sites):
        count = _constant_value_orbitals(builder._sites[site])
        if count is not None and count != norbs[k]:
            if site.family.norbs is not None:
                overruled.setdefault(site.family, (site, count))
            norbs[k] = count
    _warn_overruled_norbs(overruled)
    site_idx = np.arange(len(sites), dtype=np.int64)
    onsite = TermGroup.collect(
        sites,
        [builder._sites[s] for s in sites],
        site_idx,
        site_idx,
        norbs,
        onsite=True,
        vectorize=builder.vectorize,
    )
    return norbs, onsite


def _finalized_lead(
    lead: Builder, *, spin_degeneracy: int, magnetic_flux: str | None
) -> InfiniteSystem:
    """The InfiniteSystem of a lead Builder: its cell, split into cell and inter-cell terms."""
    sym = lead._symmetry
    assert sym is not None
    # Deterministic: by family name, then (for equal names) the family's canonical form.
    sites = sorted(lead._sites, key=lambda s: (str(s.family.name), s.family.canonical_repr, s.tag))
    if not sites:
        raise ValueError("the lead has no sites")
    index = {s: i for i, s in enumerate(sites)}
    norbs, onsite = _onsite_terms(lead, sites, _infer_norbs(lead))
    cell: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
    forward: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
    backward: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
    for (a, b), value in lead._hoppings.items():
        dom_b = _which1(sym, b)
        target = {0: cell, 1: forward, -1: backward}.get(dom_b)
        if target is None:
            raise ValueError(
                f"lead hopping {_described((a, b))} spans {abs(dom_b)} periods; lead hoppings may "
                "only connect neighbouring unit cells (use a longer period)"
            )
        target[0].append((a, b))
        target[1].append(value)
        target[2].append(index[a])
        target[3].append(index[sym.to_fd(b)])

    def groups(
        part: tuple[list[Any], list[Any], list[int], list[int]], conj: bool
    ) -> tuple[TermGroup, ...]:
        return TermGroup.collect(
            part[0],
            part[1],
            np.array(part[2], dtype=np.int64),
            np.array(part[3], dtype=np.int64),
            norbs,
            onsite=False,
            vectorize=lead.vectorize,
            conj=conj,
        )

    return InfiniteSystem(
        sites=sites,
        symmetry=sym,
        norbs=norbs,
        onsite=onsite,
        cell_hoppings=groups(cell, False),
        # <a|H|b> with b in the next cell is directly part of <0|H|1>; with b in the
        # previous cell its conjugate is.
        inter_cell_hoppings=groups(forward, False) + groups(backward, True),
        conservation_law=lead.conservation_law,
        spin_degeneracy=spin_degeneracy,
        magnetic_flux=magnetic_flux,
        time_reversal=lead.time_reversal,
        particle_hole=lead.particle_hole,
        chiral=lead.chiral,
    )


def _finalized_system(
    builder: Builder, *, spin_degeneracy: int, magnetic_flux: str | None
) -> System:
    """The System of a finite Builder with its leads."""
    # Sorted by family and tag, as Kwant's: the Hamiltonian's rows are Kwant's, whatever
    # the order the sites were added in.
    sites = sorted(builder._sites, key=lambda s: (s.family.canonical_repr, s.tag))
    if not sites:
        raise ValueError("the system has no sites")
    index = {s: i for i, s in enumerate(sites)}
    norbs_map = _infer_norbs(builder)
    _check_leads(builder, norbs_map)
    norbs, onsite = _onsite_terms(builder, sites, norbs_map)
    pairs = list(builder._hoppings)
    hoppings = TermGroup.collect(
        pairs,
        [builder._hoppings[p] for p in pairs],
        np.array([index[a] for a, _ in pairs], dtype=np.int64),
        np.array([index[b] for _, b in pairs], dtype=np.int64),
        norbs,
        onsite=False,
        vectorize=builder.vectorize,
    )

    def system_index(wanted: list[Site]) -> NDArray[np.int64]:
        return np.array([index.get(site, -1) for site in wanted], dtype=np.int64)

    return _assembled_system(
        builder,
        system_index,
        spin_degeneracy,
        magnetic_flux,
        sites=sites,
        norbs=norbs,
        onsite=onsite,
        hoppings=hoppings,
    )


_del_site_pos = Site.__dict__["_pos"].__delete__


def _sites_with_positions(
    families: list[SiteFamily],
    lengths: list[int],
    fams: NDArray[np.int64],
    tags: NDArray[np.int64],
) -> list[Site]:
    """Site objects of lattice sites, their positions computed for all at once."""
    out: list[Any] = [None] * len(fams)
    for f in np.unique(fams).tolist():
        rows = np.flatnonzero(fams == f)
        family = families[f]
        part = tags[rows, : lengths[f]]
        pos = family.positions(part)
        pos.flags.writeable = False
        for k, tag, p in zip(rows.tolist(), part.tolist(), pos):
            out[k] = _new_site(family, Tag(tag), p)
    return out


def _bulk_norbs(bulk: BulkStore) -> dict[SiteFamily, int]:
    """_infer_norbs for the array store: each (family, value) combination once, in the
    order the dictionaries would meet it first (which is what decides)."""
    norbs: dict[SiteFamily, int] = {}
    families, values = bulk.families, bulk.values
    nv = np.int64(max(len(values), 1))
    nf = np.int64(max(len(families), 1))
    combos = bulk.fam.astype(np.int64) * nv + bulk.val
    _, first = np.unique(combos, return_index=True)
    for k in np.sort(first).tolist():
        fam, value = families[int(bulk.fam[k])], values[int(bulk.val[k])]
        if fam.norbs is not None:
            norbs[fam] = fam.norbs
        elif not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(fam, int(np.shape(value)[0]))
    ha, hb, hv = bulk.merge_hoppings()
    fa, fb = bulk.fam[ha].astype(np.int64), bulk.fam[hb].astype(np.int64)
    combos = (hv * nf + fa) * nf + fb
    _, first = np.unique(combos, return_index=True)
    for k in np.sort(first).tolist():
        fam_a, fam_b = families[int(fa[k])], families[int(fb[k])]
        value = values[int(hv[k])]
        for fam in (fam_a, fam_b):
            if fam.norbs is not None:
                norbs[fam] = fam.norbs
        if not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(fam_a, int(np.shape(value)[0]))
            norbs.setdefault(fam_b, int(np.shape(value)[1]))
    return norbs


def _bulk_groups(
    bulk: BulkStore,
    ends: tuple[NDArray[Any], ...],
    value_numbers: NDArray[Any],
    index: NDArray[np.int64],
    norbs: NDArray[np.int64],
    *,
    vectorize: bool,
) -> tuple[TermGroup, ...]:
    """TermGroup.collect for terms given as store rows: the same groups, in the same
    order, each with its terms in order (`ends`: one row array per site of a term)."""
    onsite = len(ends) == 1
    families, values = bulk.families, bulk.values
    lengths = bulk.tag_length
    if not len(ends[0]):
        return ()
    fams = [bulk.fam[e] for e in ends]
    single = value_numbers.min() == value_numbers.max() and all(f.min() == f.max() for f in fams)
    if single:
        # The usual case (one value, one family per end): one group of every term.
        groups = [np.arange(len(ends[0]))]
    else:
        nf = np.int64(max(len(families), 1))
        code = value_numbers.astype(np.int64)
        for f in fams:
            code = code * nf + f
        combos, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        del code
        group_of_combo = np.empty(len(combos), dtype=np.int64)
        keyed: dict[tuple[Any, ...], int] = {}
        for c in np.argsort(first, kind="stable").tolist():
            k = int(first[c])
            value = values[int(value_numbers[k])]
            shape = (int(norbs[index[ends[0][k]]]), int(norbs[index[ends[-1][k]]]))
            if callable(value):
                key: tuple[Any, ...] = ("f", getattr(value, "_term_key", id(value)), shape)
                if vectorize:
                    key += tuple(id(families[int(f[k])]) for f in fams)
            else:
                arr = np.asarray(value)
                key = ("c", arr.tobytes(), arr.dtype.str, arr.shape, shape)
            group_of_combo[c] = keyed.setdefault(key, len(keyed))
        group = group_of_combo[inverse.ravel()]
        del inverse
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(keyed) + 1))
        del group
        groups = [order[bounds[g] : bounds[g + 1]] for g in range(len(keyed))]
    del fams
    result = []
    for terms in groups:
        k = int(terms[0])
        value = values[int(value_numbers[k])]
        ends_of_terms = [e[terms] for e in ends]
        rows = index[ends_of_terms[0]]
        cols = index[ends_of_terms[-1]]
        shape = (int(norbs[rows[0]]), int(norbs[cols[0]]))
        vectorized = bool(callable(value) and vectorize)
        sites: Any
        if vectorized:
            sites = tuple(
                SiteArray(
                    families[int(bulk.fam[e[0]])], bulk.tags[e, : lengths[int(bulk.fam[e[0]])]]
                )
                for e in ends_of_terms
            )
        else:
            sites = LazySites(
                families, lengths, bulk.fam, bulk.tags, [e.astype(np.int32) for e in ends_of_terms]
            )
            if callable(value):
                with gc_paused():
                    sites = list(sites)
        result.append(
            TermGroup(
                rows,
                cols,
                value,
                shape,
                sites,
                onsite=onsite,
                vectorized=vectorized,
            )
        )
    return tuple(result)


def _bulk_onsite_norbs(
    bulk: BulkStore, order: NDArray[np.int64], norbs: NDArray[np.int64]
) -> NDArray[np.int64]:
    """_onsite_terms' orbital counts for the array store's sites in `order`: a constant
    onsite value of another shape than its family's gives the site its own count."""
    counts = np.array(
        [_constant_value_orbitals(v) or 0 for v in bulk.values] or [0], dtype=np.int64
    )
    own = counts[bulk.val[order]]
    differ = (own > 0) & (own != norbs)
    if not np.any(differ):
        return norbs
    where = np.flatnonzero(differ)
    fams = bulk.fam[order[where]]
    _, first = np.unique(fams, return_index=True)
    overruled: dict[SiteFamily, tuple[Site, int]] = {}
    for k in np.sort(where[first]).tolist():
        family = bulk.families[int(bulk.fam[order[k]])]
        if family.norbs is not None:
            site = bulk.make_sites(order[k : k + 1])[0]
            overruled[family] = (site, int(own[k]))
    norbs = norbs.copy()
    norbs[differ] = own[differ]
    _warn_overruled_norbs(overruled)
    return norbs


def _finalized_bulk(
    builder: Builder, bulk: BulkStore, *, spin_degeneracy: int, magnetic_flux: str | None
) -> System:
    """_finalized_system for a Builder whose sites and hoppings are in its array store:
    the same System, built from arrays."""
    bulk.merge()
    n = len(bulk.fam)
    if not n:
        raise ValueError("the system has no sites")
    families, lengths = bulk.families, bulk.tag_length
    # Sorted by family and tag, as _finalized_system (and Kwant) sort.
    rank = np.empty(len(families), dtype=np.int64)
    rank[np.argsort([f.canonical_repr for f in families], kind="stable")] = np.arange(
        len(families)
    )
    width = bulk.tags.shape[1]
    order = np.lexsort([bulk.tags[:, k] for k in range(width - 1, -1, -1)] + [rank[bulk.fam]])
    index = np.empty(n, dtype=np.int64)
    index[order] = np.arange(n, dtype=np.int64)
    norbs_map = _bulk_norbs(bulk)
    _check_leads(builder, norbs_map)
    family_norbs = np.array([norbs_map.get(f, 1) for f in families], dtype=np.int64)
    norbs = _bulk_onsite_norbs(bulk, order, family_norbs[bulk.fam[order]])
    pos_blocks = []
    for f, fam in enumerate(families):
        rows = np.flatnonzero(bulk.fam == f)
        if len(rows):
            pos_blocks.append((rows, fam.positions(bulk.tags[rows, : lengths[f]])))  # type: ignore[attr-defined]
    dim = max(p.shape[1] for _, p in pos_blocks)
    pos = np.zeros((n, dim))
    for rows, p in pos_blocks:
        pos[index[rows], : p.shape[1]] = p
    onsite = _bulk_groups(
        bulk, (order,), bulk.val[order], index, norbs, vectorize=builder.vectorize
    )
    ha, hb, hv = bulk.merge_hoppings()
    hoppings = _bulk_groups(bulk, (ha, hb), hv, index, norbs, vectorize=builder.vectorize)

    def system_index(sites: list[Site]) -> NDArray[np.int64]:
        rows = bulk.rows_of(sites)
        return np.where(rows >= 0, index[rows], -1)

    return _assembled_system(
        builder,
        system_index,
        spin_degeneracy,
        magnetic_flux,
        sites=SiteSource(bulk, order),
        pos=pos,
        norbs=norbs,
        onsite=onsite,
        hoppings=hoppings,
    )


def _assembled_system(
    builder: Builder,
    system_index: Callable[[list[Site]], NDArray[np.int64]],
    spin_degeneracy: int,
    magnetic_flux: str | None,
    **parts: Any,
) -> System:
    """The System of a finite Builder from its parts (sites, orbitals, term groups, and
    positions where the sites are made later), with its leads and symmetries."""
    return System(
        **parts,
        **_finalized_leads(builder, system_index, spin_degeneracy, magnetic_flux),
        spin_degeneracy=spin_degeneracy,
        magnetic_flux=magnetic_flux,
        conservation_law=builder.conservation_law,
        time_reversal=builder.time_reversal,
        particle_hole=builder.particle_hole,
        chiral=builder.chiral,
    )


def _check_leads(builder: Builder, norbs_map: dict[SiteFamily, int]) -> None:
    """Refuse lead objects of other types, and leads that disagree with the region on
    the orbitals of a family (whose counts from the leads join `norbs_map`)."""
    for lead in builder.leads:
        if not isinstance(lead, (BuilderLead, SelfEnergyLead, ModesLead)):
            raise TypeError(
                f"Builder.leads may hold BuilderLead, SelfEnergyLead or ModesLead objects, "
                f"got {type(lead).__name__}"
            )
    for lead in builder.leads:
        if not isinstance(lead, BuilderLead):
            continue
        for fam_id, n in _infer_norbs(lead.builder).items():
            if norbs_map.setdefault(fam_id, n) != n:
                raise ValueError(
                    f"a lead and the scattering region disagree on the number of orbitals "
                    f"({n} vs {norbs_map[fam_id]}) of a site family; set norbs= on the lattice"
                )


def _finalized_leads(
    builder: Builder,
    system_index: Callable[[list[Site]], NDArray[np.int64]],
    spin_degeneracy: int,
    magnetic_flux: str | None,
) -> dict[str, Any]:
    """The leads, lead interfaces and paddings of a finite Builder's System;
    `system_index` gives the System's index of sites, -1 for those it lacks."""
    # As Kwant: each lead's padding sites that are in the system, in the padding's
    # (sorted) order.
    paddings = []
    for lead in builder.leads:
        found = system_index(list(getattr(lead, "padding", ())))
        paddings.append(found[found >= 0])
    leads: list[Any] = []
    interfaces = []
    for k, lead in enumerate(builder.leads):
        if isinstance(lead, (SelfEnergyLead, ModesLead)):
            # Kwant's function leads: their interface sites are given, in their order.
            found = system_index(list(lead.interface))
            if np.any(found < 0):
                absent = lead.interface[int(np.argmax(found < 0))]
                raise ValueError(
                    f"interface site {absent!r} of lead {k} ({type(lead).__name__}) is not "
                    "in the system"
                )
            leads.append(lead.finalized())
            interfaces.append(found)
            continue
        flead = _finalized_lead(
            lead.builder, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
        )
        leads.append(flead)
        sym = lead.builder._symmetry
        assert sym is not None
        images = [sym.act((lead.domain,), flead.sites[j]) for j in flead.interface_sites]
        given = list(lead.interface)
        if len(given) != len(images) or set(given) != set(images):
            raise ValueError(
                f"the interface of lead {k} ({len(given)} sites) is not the set of the lead's "
                f"sites that hop into its next cell ({len(images)} sites, in one cell); make "
                "the lead with attach_lead"
            )
        found = system_index(images)
        if np.any(found < 0):
            missing = images[int(np.argmax(found < 0))]
            raise ValueError(f"lead interface site {_described(missing)} is not in the system")
        interfaces.append(found)
    return {"leads": leads, "lead_interfaces": interfaces, "lead_paddings": paddings}


def _with_nearest_cell_hoppings(lead_builder: Builder) -> Builder:
    """The lead itself, or, where its hoppings reach beyond the next unit cell, an
    equivalent lead whose period is long enough that they do not (as Kwant does).

    The longer period is the subgroup generated by ``hop_range`` periods; its unit cell
    is filled from the original lead, values and symmetry information unchanged.
    """
    sym = lead_builder._symmetry
    hop_range = max((abs(_which1(sym, b)) for _, b in lead_builder._hoppings), default=0)
    if hop_range <= 1:
        return lead_builder
    longer = Builder(
        sym.subgroup((hop_range,)),
        conservation_law=lead_builder.conservation_law,
        time_reversal=lead_builder.time_reversal,
        particle_hole=lead_builder.particle_hole,
        chiral=lead_builder.chiral,
        vectorize=lead_builder.vectorize,
    )
    longer.fill(lead_builder, lambda site: True, list(lead_builder.sites()), max_sites=np.inf)
    return longer


def _attach_extension(
    lead_builder: Builder,
    start: list[Site],
    min_dom: int,
    max_dom: int,
    *,
    contains: Callable[[Site], bool],
    add_site: Callable[[Site, Any], None],
    add_hopping: Callable[[Site, Site, Any], None],
) -> list[Site]:
    """Kwant's extension of a scattering region along a lead, before the lead attaches.

    From the lead cell just outside the region (domain ``max_dom + 1``, the `start`
    sites), the lead's hopping graph is walked towards the region: every lead site not
    yet in the region is added (with the lead's onsite value) until the walk meets the
    region, and every lead hopping from an added site is set. Reaching a domain before
    ``min_dom`` means the region does not cut the lead. Returns the sites added, in order
    (the `start` sites first).
    """
    sym = lead_builder._symmetry
    assert sym is not None
    added: list[Site] = []
    new: set[Site] = set()
    for site in start:
        add_site(site, lead_builder._sites[sym.to_fd(site)])
        added.append(site)
        new.add(site)
    done: set[tuple[Site, Site]] = set()
    k = 0
    while k < len(added):
        tail = added[k]
        k += 1
        for head in lead_builder.neighbors(tail):
            if head not in new and not contains(head):
                domain = _which1(sym, head)
                if domain < min_dom:
                    raise ValueError(
                        "the lead cannot be attached: the scattering region does not cut "
                        f"it (the lead's site {_described(head)} has no image in the region "
                        "before "
                        "the region ends); check the lead's cross-section and direction"
                    )
                if domain > max_dom + 1:
                    continue
                add_site(head, lead_builder._sites[sym.to_fd(head)])
                added.append(head)
                new.add(head)
            if (head, tail) in done:
                continue
            done.add((tail, head))
            add_hopping(tail, head, lead_builder[tail, head])
    return added


def _row_entries(
    ptr: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The entries of `rows` of a CSR structure (pointers `ptr`), row after row, and the
    number of entries of each row."""
    counts = ptr[rows + 1] - ptr[rows]
    entries = np.arange(counts.sum()) + np.repeat(ptr[rows] - (np.cumsum(counts) - counts), counts)
    return entries, counts


def _bulk_extension(
    bulk: BulkStore, lead_builder: Builder, min_dom: int, max_dom: int
) -> tuple[list[Site], dict[str, Any]]:
    """_attach_extension for a region in the array store, a whole front at a time.

    The walk visits the same sites in the same order as the one-site-at-a-time walk (its
    queue, level by level) and sets the same hoppings in the same order: a hopping from
    a visited site to a region site always, to another visited site when that one comes
    later in the walk (the later one would find it done). Returns the extension's sites
    (the start cell first) and its hoppings, those touching the start cell left out
    (attach_lead removes that cell again).
    """
    sym = lead_builder._symmetry
    assert sym is not None
    lead_sites = list(lead_builder._sites)
    n_fd = len(lead_sites)
    fd_index = {site: i for i, site in enumerate(lead_sites)}
    ptr = [0]
    nbr_j: list[int] = []
    nbr_dm: list[int] = []
    nbr_value: list[Any] = []
    for site in lead_sites:
        for other in lead_builder._adjacent[site]:
            nbr_j.append(fd_index[sym.to_fd(other)])
            nbr_dm.append(sym._which1(other))
            nbr_value.append(lead_builder[site, other])
        ptr.append(len(nbr_j))
    ptr_a, j_a, dm_a = (np.array(x, dtype=np.int64) for x in (ptr, nbr_j, nbr_dm))
    # Tags of lead site j translated to domain m: fd_tags[j] + m * shift[j].
    width = max(len(s.tag) for s in lead_sites)
    fd_tags = np.zeros((n_fd, width), dtype=np.int64)
    shift = np.zeros((n_fd, width), dtype=np.int64)
    fams = np.empty(n_fd, dtype=np.int32)
    for i, site in enumerate(lead_sites):
        fd_tags[i, : len(site.tag)] = site.tag
        shift[i, : len(site.tag)] = sym._tag_shifts(site.family)[0]
        number = bulk.known_family(site.family)
        fams[i] = number
    span = max_dom - min_dom + 3

    def code(j: NDArray[np.int64], m: NDArray[np.int64]) -> NDArray[np.int64]:
        return (m - min_dom + 1) * n_fd + j

    added_j = [np.arange(n_fd, dtype=np.int64)]
    added_m = [np.full(n_fd, max_dom + 1, dtype=np.int64)]
    visited = np.zeros(span * n_fd, dtype=bool)
    visited[code(added_j[0], added_m[0])] = True
    pairs: list[tuple[NDArray[Any], ...]] = []
    first_position = 0
    front_j, front_m = added_j[0], added_m[0]
    while len(front_j):
        entry, counts = _row_entries(ptr_a, front_j)
        tail_pos = np.repeat(np.arange(first_position, first_position + len(front_j)), counts)
        head_j = j_a[entry]
        head_m = np.repeat(front_m, counts) + dm_a[entry]
        inside = (head_m >= min_dom - 1) & (head_m <= max_dom + 1)
        seen = np.zeros(len(head_j), dtype=bool)
        seen[inside] = visited[code(head_j[inside], head_m[inside])]
        region = np.full(len(head_j), -1, dtype=np.int64)
        ask = np.flatnonzero(~seen & (fams[head_j] >= 0))
        if len(ask):
            tags = fd_tags[head_j[ask]] + head_m[ask, None] * shift[head_j[ask]]
            region[ask] = bulk.find(fams[head_j[ask]], tags)
        fresh = ~seen & (region < 0)
        below = fresh & (head_m < min_dom)
        if np.any(below):
            k = int(np.argmax(below))
            head = sym.act((int(head_m[k]),), lead_sites[int(head_j[k])])
            raise ValueError(
                "the lead cannot be attached: the scattering region does not cut "
                f"it (the lead's site {_described(head)} has no image in the region "
                "before the region ends); check the lead's cross-section and direction"
            )
        beyond = fresh & (head_m > max_dom + 1)
        grow = np.flatnonzero(fresh & ~beyond)
        codes = code(head_j[grow], head_m[grow])
        _, first = np.unique(codes, return_index=True)
        grow = grow[np.sort(first)]
        visited[code(head_j[grow], head_m[grow])] = True
        pairs.append((tail_pos, entry, head_j, head_m, region, beyond))
        first_position += len(front_j)
        front_j, front_m = head_j[grow], head_m[grow]
        added_j.append(front_j)
        added_m.append(front_m)
    all_j = np.concatenate(added_j)
    all_m = np.concatenate(added_m)
    position = np.full(span * n_fd, -1, dtype=np.int64)
    position[code(all_j, all_m)] = np.arange(len(all_j))
    tail_pos, entry, head_j, head_m, region, beyond = (
        np.concatenate([p[k] for p in pairs]) for k in range(6)
    )
    head_pos = np.full(len(head_j), -1, dtype=np.int64)
    in_walk = (region < 0) & ~beyond
    head_pos[in_walk] = position[code(head_j[in_walk], head_m[in_walk])]
    keep = (region >= 0) | (in_walk & (head_pos > tail_pos))
    # The start cell is removed again, with its hoppings.
    keep &= (tail_pos >= n_fd) & ((region >= 0) | (head_pos >= n_fd))
    sites = [
        sym.act((int(m),), lead_sites[int(j)]) for j, m in zip(all_j.tolist(), all_m.tolist())
    ]
    kept = np.flatnonzero(keep)
    region_sites = {}
    if np.any(region[kept] >= 0):
        rows = region[kept][region[kept] >= 0]
        region_sites = dict(zip(rows.tolist(), bulk.make_sites(rows)))
    heads = [
        region_sites[int(region[k])] if region[k] >= 0 else sites[int(head_pos[k])]
        for k in kept.tolist()
    ]
    hoppings = {
        "tails": [sites[int(p)] for p in tail_pos[kept].tolist()],
        "heads": heads,
        "values": nbr_value,
        "value_index": entry[kept],
        "fd_of_added": all_j[n_fd:].tolist(),
    }
    return sites, hoppings


def _attach_finish(
    sym: TranslationalSymmetry,
    lead_builder: Builder,
    start: list[Site],
    added: list[Site],
    max_dom: int,
    contains: Callable[[Site], bool],
) -> tuple[list[Site], list[Site]]:
    """The sites that stay added and the lead's interface, as in Kwant.

    The lead attaches to cell ``max_dom`` and the `start` cell is removed again. The
    interface is the region's copy of the lead cell sites that hop into the next cell
    (Kwant's interface): the extension put every one of them into the region, whereas
    other sites of a ragged cell may be absent, and need not be there.
    """
    start_set = set(start)
    interface = [sym.act((max_dom,), site) for site in _interface_cell(lead_builder)]
    missing = [site for site in interface if not contains(site)]
    if missing:  # the extension adds every neighbour of the start cell
        raise AssertionError(f"lead interface site {_described(missing[0])} is not in the region")
    return [site for site in added if site not in start_set], interface


def _interface_cell(lead_builder: Builder) -> list[Site]:
    """The sites of a lead's unit cell with hoppings into the next cell, in stored order."""
    sym = lead_builder._symmetry
    assert sym is not None
    return [
        site
        for site in lead_builder._sites
        if any(_which1(sym, other) == 1 for other in lead_builder.neighbors(site))
    ]


def _warn_same_side(
    leads: list[tuple[Any, Iterable[Site]]], sym: TranslationalSymmetry, interface: list[Site]
) -> None:
    """Warn when a new lead lies on top of an attached one: same period, shared interface.

    Two leads with the same period whose interfaces share sites occupy the same
    semi-infinite region, which is never a working device; the usual cause is a second
    ``attach_lead(lead)`` where ``attach_lead(lead.reversed())`` was meant.
    """
    sites = set(interface)
    for index, (other_sym, other_interface) in enumerate(leads):
        if not hasattr(sym, "periods") or not hasattr(other_sym, "periods"):
            continue
        if other_sym.periods.shape != sym.periods.shape:
            continue
        scale = float(np.linalg.norm(sym.periods))
        if not np.allclose(other_sym.periods, sym.periods, rtol=0, atol=1e-9 * scale):
            continue
        if sites & set(other_interface):
            warnings.warn(
                f"leads {index} and {len(leads)} are attached on the same side with the same "
                f"direction {sym.periods[0].tolist()} and share interface sites; was "
                f"attach_lead(lead.reversed()) meant for lead {len(leads)}?",
                UserWarning,
                stacklevel=3,
            )


def _skip_start_sites(sites: list[Site], why: str, stacklevel: int) -> None:
    """Warn, as Kwant does, that :meth:`Builder.fill` ignores these start sites.

    ``stacklevel`` counts from the caller, as for :func:`warnings.warn`.
    """
    if sites:
        warnings.warn(
            f"Builder.fill: start sites {why} are ignored: {sites}",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )


class BuilderLead:
    """A lead attached to a Builder: the lead Builder and its interface sites, as Kwant's.

    Parameters
    ----------
    builder : Builder
        The lead (with its symmetry).
    interface : sequence of Site
        Sites of the scattering region with hoppings into the lead: the images of the
        lead's cell sites that hop into the next cell.
    padding : sequence of Site, optional
        Sites of the scattering region that were added to it for this lead (those
        :meth:`Builder.attach_lead` returns); stored sorted.

    Attributes
    ----------
    builder, interface, padding
        As given (`padding` sorted, ``[]`` by default).
    domain : int
        Index of the lead's symmetry period that holds the interface.
    """

    def __init__(
        self, builder: Builder, interface: Iterable[Site], padding: Iterable[Site] | None = None
    ) -> None:
        if not isinstance(builder, Builder) or builder._symmetry is None:
            raise TypeError(
                f"a BuilderLead needs a lead Builder (with a symmetry), got {builder!r}"
            )
        self.builder = builder
        # An empty interface is allowed here, as in Kwant (a lead without hoppings
        # attaches to nothing); finalization refuses it.
        self.interface = list(interface)
        if not all(isinstance(site, Site) for site in self.interface):
            raise TypeError(f"interface sites must be Sites, got {_described(self.interface)}")
        self.padding = sorted(padding) if padding is not None else []

    @property
    def domain(self) -> int:
        sym = self.builder._symmetry
        assert sym is not None
        if not self.interface:
            raise ValueError(
                "this lead has an empty interface (no site of the scattering region hops "
                "into it), so it is attached to nothing"
            )
        return _which1(sym, self.interface[0])

    def __repr__(self) -> str:
        return (
            f"BuilderLead({self.builder!r}, {len(self.interface)} interface sites, "
            f"{len(self.padding)} padding sites)"
        )


def herm_conj(value: Any) -> Any:
    """The Hermitian conjugate of a hopping value, keeping its type where it can.

    A number or an array with ``conjugate`` (NumPy, tinyarray) is conjugated and, if it
    is a matrix, transposed; nested sequences become a NumPy array first; anything else
    (e.g. ``None``, used as a placeholder value) is returned as it is, as in Kwant.

    Examples
    --------
    >>> herm_conj(1 + 2j)
    (1-2j)
    >>> herm_conj([[1, 2j], [3, 4]]).imag.tolist()
    [[-0.0, -0.0], [-2.0, -0.0]]
    """
    if value is None or isinstance(value, (str, bytes)):
        return value
    if not hasattr(value, "conjugate"):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):
            return value
        if value.dtype == object:
            return value
    value = value.conjugate()
    shape = getattr(value, "shape", ())
    if len(shape) == 2:
        value = value.transpose()
    elif len(shape) > 2:  # a vectorized stack of matrices
        value = np.swapaxes(value, -1, -2)
    return value


class HermConjOfFunc:
    """The Hermitian conjugate of a hopping value function, as Kwant's.

    ``syst[b, a]`` of a hopping set as ``syst[a, b] = f`` is ``HermConjOfFunc(f)``:
    called with ``(b, a, ...)`` it returns the Hermitian conjugate of ``f(a, b, ...)``.
    Assigning it back (``syst[b, a] = syst[b, a]``) stores `f` for ``(a, b)`` again.

    Parameters
    ----------
    function : callable
        The hopping value function.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, a: Site, b: Site, *args: Any, **kwargs: Any) -> Any:
        return herm_conj(self.function(b, a, *args, **kwargs))

    @property
    def _term_key(self) -> tuple[str, int]:
        # Conjugates of one function are one term group, however many were made.
        return ("conj", id(self.function))

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.function)

    def __repr__(self) -> str:
        return f"HermConjOfFunc({self.function!r})"


# --------------------------------------------------------------------------------------
# Vectorized construction
# --------------------------------------------------------------------------------------


class _TagIndex:
    """Sorted integer keys of a set of integer tags, for fast vectorized membership tests."""

    def __init__(self, tags: NDArray[np.int64], values: NDArray[np.int64]) -> None:
        self.lo, self.hi = tags.min(axis=0), tags.max(axis=0)
        # Mixed-radix integer key per tag: sorting and searching int64 is fast.
        self.strides = np.cumprod(np.concatenate([[1], (self.hi - self.lo + 1)[:-1]])).astype(
            np.int64
        )
        keys = (tags - self.lo) @ self.strides
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]
        if len(keys) > 1 and np.any(self.keys[1:] == self.keys[:-1]):
            raise ValueError("the same site was added twice")

    def find(self, tags: NDArray[np.int64]) -> NDArray[np.int64]:
        """Values stored for `tags`, -1 where a tag is absent."""
        if not len(tags):
            return np.zeros(0, dtype=np.int64)
        inside = np.all((tags >= self.lo) & (tags <= self.hi), axis=1)
        query = (np.clip(tags, self.lo, self.hi) - self.lo) @ self.strides
        pos = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(inside & (self.keys[pos] == query), self.values[pos], -1)


class ArrayBuilder:
    """Build large systems from arrays: sites by the million, values evaluated on arrays.

    Sites are added as integer tag arrays (or by filling a region), hoppings by
    :class:`HoppingKind`, and value functions receive :class:`~mesoscopic.lattice.SiteArray`
    objects (``.pos`` of shape (n, dim), ``.tags`` of shape (n, d)) and return one
    value per site or hopping. Leads are ordinary lead Builders. The result of
    :meth:`finalized` is the same :class:`~mesoscopic.system.System` the Builder gives.

    Examples
    --------
    >>> import numpy as np, mesoscopic as meso
    >>> lat = meso.lattice.square(norbs=1)
    >>> syst = meso.ArrayBuilder()
    >>> syst.fill(lat, lambda pos: np.ones(len(pos), bool), ((0, 0), (99, 9)),
    ...           onsite=lambda s, v: 4.0 + v * np.sin(s.pos[:, 0]))
    1000
    >>> syst.add_hoppings(lat.neighbors(), -1.0)
    1890
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    >>> lead[(lat(0, y) for y in range(10))] = 4.0
    >>> lead[lat.neighbors()] = -1.0
    >>> syst.attach_lead(lead), syst.attach_lead(lead.reversed())  # no sites to add
    ([], [])
    >>> fsys = syst.finalized()
    >>> fsys.hamiltonian_submatrix(params={"v": 0.1}, sparse=True).shape
    (1000, 1000)
    """

    def __init__(self, *, conservation_law: Any = None) -> None:
        self.conservation_law = conservation_law
        self._families: list[Monatomic] = []
        self._tags: list[NDArray[np.int64]] = []
        self._onsite: list[Any] = []
        # Whether each site group's onsite function takes a SiteArray (the groups added
        # here) or one Site (lead sites copied by attach_lead from a non-vectorized lead).
        self._onsite_vectorized: list[bool] = []
        # Hopping assignments in order; a later one replaces an earlier one on the same
        # pair of sites (in either orientation), as in the Builder.
        self._hoppings: list[_HoppingAssignment] = []
        self._leads: list[tuple[Builder, int, list[Site]]] = []
        self._paddings: list[list[Site]] = []  # the sites attach_lead added, per lead
        self._lookup: dict[SiteFamily, _TagIndex] | None = None

    # ---- sites -----------------------------------------------------------------------

    def add_sites(self, family: SiteFamily, tags: ArrayLike, onsite: Any) -> int:
        """Add sites of one family.

        Parameters
        ----------
        family : Monatomic
            A lattice (or one sublattice of a Polyatomic lattice).
        tags : array_like of int, shape (n, d)
            Integer coordinates of the sites, without duplicates.
        onsite : number, matrix or callable
            Onsite value; a callable receives a SiteArray first, then parameters by
            name, and returns a scalar, an (n,) array, a matrix or an (n, k, k) array.

        Returns
        -------
        int
            Number of sites added.
        """
        if not isinstance(family, Monatomic):
            raise TypeError(f"family must be a Monatomic lattice or sublattice, got {family!r}")
        tags_arr = np.asarray(tags)
        if tags_arr.ndim == 1 and len(family.prim_vecs) == 1:
            tags_arr = tags_arr[:, None]
        if tags_arr.ndim != 2 or tags_arr.shape[1] != len(family.prim_vecs):
            raise ValueError(
                f"tags must have shape (n, {len(family.prim_vecs)}) for this lattice, "
                f"got {tags_arr.shape}"
            )
        if not np.issubdtype(tags_arr.dtype, np.integer):
            raise TypeError(f"tags must be integers, got dtype {tags_arr.dtype}")
        self._families.append(family)
        self._tags.append(tags_arr.astype(np.int64))
        self._onsite.append(_check_value(onsite, f"onsite of family {family.name!r}"))
        self._onsite_vectorized.append(True)
        self._lookup = None
        return len(tags_arr)

    def fill(
        self,
        lattice: Any,
        inside: Callable[[NDArray[np.float64]], NDArray[np.bool_]],
        box: tuple[ArrayLike, ArrayLike],
        *,
        onsite: Any,
    ) -> int:
        """Add all sites of `lattice` inside a region, evaluated on arrays.

        Parameters
        ----------
        lattice : Monatomic or Polyatomic
        inside : callable
            ``inside(pos) -> bool array``, with `pos` of shape (n, dim).
        box : (lower, upper)
            Real-space corners of a box containing the region.
        onsite : number, matrix or callable
            As in :meth:`add_sites` (used for every sublattice).

        Returns
        -------
        int
            Number of sites added.
        """
        lower = np.asarray(box[0], dtype=float)
        upper = np.asarray(box[1], dtype=float)
        total = 0
        for fam in lattice.sublattices:
            if lower.shape != (fam.prim_vecs.shape[1],) or upper.shape != lower.shape:
                raise ValueError(f"box corners must have shape ({fam.prim_vecs.shape[1]},)")
            corners = np.array(list(itertools.product(*zip(lower, upper))))
            coords = (corners - fam.offset) @ fam._pinv
            lo = np.floor(coords.min(axis=0)).astype(np.int64) - 1
            hi = np.ceil(coords.max(axis=0)).astype(np.int64) + 1
            axes = [np.arange(a, b + 1) for a, b in zip(lo, hi)]
            tags = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
            pos = fam.positions(tags)
            # Sites on the box's faces count as inside, to rounding relative to the lattice.
            slack = 1e-9 * fam._scale
            in_box = np.all((pos >= lower - slack) & (pos <= upper + slack), axis=1)
            tags, pos = tags[in_box], pos[in_box]
            mask = np.asarray(inside(pos), dtype=bool)
            if mask.shape != (len(pos),):
                raise ValueError(
                    f"inside(pos) must return a boolean array of shape ({len(pos)},), "
                    f"got shape {mask.shape}"
                )
            if np.any(mask):
                total += self.add_sites(fam, tags[mask], onsite)
        if total == 0:
            raise ValueError("the region contains no lattice sites inside the box")
        return total

    def _build_lookup(self) -> dict[SiteFamily, _TagIndex]:
        if self._lookup is None:
            grouped: dict[SiteFamily, tuple[list[NDArray[np.int64]], list[NDArray[np.int64]]]] = {}
            start = 0
            for fam, tags in zip(self._families, self._tags):
                entry = grouped.setdefault(fam, ([], []))
                entry[0].append(tags)
                entry[1].append(np.arange(start, start + len(tags)))
                start += len(tags)
            self._lookup = {
                key: _TagIndex(np.concatenate(tags), np.concatenate(idx))
                for key, (tags, idx) in grouped.items()
            }
        return self._lookup

    def _find(self, family: SiteFamily, tags: NDArray[np.int64]) -> NDArray[np.int64]:
        """Site indices of tags of `family`, -1 where absent."""
        lookup = self._build_lookup()
        if family not in lookup:
            return np.full(len(tags), -1, dtype=np.int64)
        return lookup[family].find(tags)

    # ---- hoppings --------------------------------------------------------------------

    def add_hoppings(self, kinds: HoppingKind | Iterable[HoppingKind], value: Any) -> int:
        """Set hoppings ``<a(x + delta)|H|b(x)>`` for every pair of sites present now.

        As with ``builder[kinds] = value``, this sets the hoppings between the sites
        already added: setting the same hopping again (in either orientation, e.g.
        ``lat.neighbors()`` twice) replaces its value, and sites added later get no
        hoppings from this call.

        Parameters
        ----------
        kinds : HoppingKind or iterable of HoppingKind
            For example ``lat.neighbors()``. A kind that joins each site to itself
            (zero delta within one family) is refused: that is an onsite term.
        value : number, matrix or callable
            A callable receives two SiteArrays (targets, sources), then parameters
            by name.

        Returns
        -------
        int
            Number of hoppings set.
        """
        kinds = [kinds] if isinstance(kinds, HoppingKind) else list(kinds)
        if not all(isinstance(k, HoppingKind) for k in kinds):
            raise TypeError(f"add_hoppings takes HoppingKinds, got {kinds!r}")
        for kind in kinds:
            if kind.family_a == kind.family_b and not any(kind.delta):
                raise ValueError(
                    f"{kind!r} joins every site to itself: that is an onsite value, set it "
                    "with add_sites or fill (a hopping needs a non-zero delta or two "
                    "different families)"
                )
        value = _check_value(value, "hopping")
        count = 0
        for kind in kinds:
            ti, si, t_tags, s_tags = self._find_pairs(kind)
            if len(ti):
                self._hoppings.append(
                    _HoppingAssignment(
                        ti,
                        si,
                        value,
                        (SiteArray(kind.family_a, t_tags), SiteArray(kind.family_b, s_tags)),
                        vectorized=True,
                    )
                )
            count += len(ti)
        return count

    def _find_pairs(self, kind: HoppingKind) -> tuple[NDArray[np.int64], ...]:
        targets, sources, t_tags, s_tags = [], [], [], []
        start = 0
        delta = np.asarray(kind.delta, dtype=np.int64)
        for fam, tags in zip(self._families, self._tags):
            if fam == kind.family_b:
                if len(delta) != tags.shape[1]:
                    raise ValueError(f"HoppingKind delta {kind.delta} does not match the tags")
                tt = tags + delta
                found = self._find(kind.family_a, tt)
                ok = found >= 0
                targets.append(found[ok])
                sources.append(np.arange(start, start + len(tags))[ok])
                t_tags.append(tt[ok])
                s_tags.append(tags[ok])
            start += len(tags)
        if not targets:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty.reshape(0, len(delta)), empty.reshape(0, len(delta))
        return (
            np.concatenate(targets),
            np.concatenate(sources),
            np.concatenate(t_tags),
            np.concatenate(s_tags),
        )

    def _site_index(self, site: Site) -> int:
        """Index of `site` in this builder, -1 if absent."""
        if not isinstance(site.family, Monatomic):
            return -1
        return int(self._find(site.family, np.array([site.tag], dtype=np.int64))[0])

    # ---- leads and finalization ------------------------------------------------------

    def attach_lead(self, lead_builder: Builder, add_cells: int = 0) -> list[Site]:
        """Attach a lead Builder, extending a ragged edge of the region as Kwant does.

        The lead attaches to the cell of the region furthest along its period. Lead
        sites between that cell and the region that the region lacks are added (with the
        lead's values and hoppings), as :meth:`Builder.attach_lead` does.

        Parameters
        ----------
        lead_builder : Builder
            A Builder with a TranslationalSymmetry of one period, pointing away from
            the region.
        add_cells : int
            Number of additional lead unit cells added to the region.

        Returns
        -------
        list of Site
            The sites added to the region.
        """
        if not isinstance(lead_builder, Builder) or lead_builder._symmetry is None:
            raise ValueError(
                f"attach_lead needs a lead Builder with a symmetry, got {lead_builder!r}"
            )
        sym = lead_builder._symmetry
        if sym.num_directions != 1:
            raise ValueError(f"a lead needs a TranslationalSymmetry with one period, got {sym!r}")
        if not lead_builder._sites:
            raise ValueError("the lead Builder has no sites")
        if isinstance(add_cells, bool) or not isinstance(add_cells, int) or add_cells < 0:
            raise ValueError(f"add_cells must be a non-negative integer, got {add_cells!r}")
        domains: list[int] = []
        lead_families = {s.family for s in lead_builder._sites}
        for fam in lead_families:
            lead_tags = np.array(
                [s.tag for s in lead_builder._sites if s.family == fam], dtype=np.int64
            )
            members = _TagIndex(lead_tags, np.arange(len(lead_tags)))
            shift = sym._tag_shifts(fam)[0]
            for f, tags in zip(self._families, self._tags):
                if f != fam:
                    continue
                dom = sym._domains(fam, tags)[:, 0]
                member = members.find(tags - dom[:, None] * shift) >= 0
                domains.extend(np.unique(dom[member]).tolist())
        if not domains:
            raise ValueError(
                "the lead does not overlap the system: no site is a translate of a lead site"
            )
        min_dom, max_dom = min(domains), max(domains) + add_cells
        new_sites: dict[Site, Any] = {}
        new_hoppings: list[tuple[Site, Site, Any]] = []

        def contains(site: Site) -> bool:
            return site in new_sites or self._site_index(site) >= 0

        start = [sym.act(max_dom + 1, s) for s in lead_builder._sites]
        extension = _attach_extension(
            lead_builder,
            start,
            min_dom,
            max_dom,
            contains=contains,
            add_site=new_sites.__setitem__,
            add_hopping=lambda a, b, value: new_hoppings.append((a, b, value)),
        )
        # The start cell's sites are not kept, so hoppings to them are left out below.
        added, interface = _attach_finish(sym, lead_builder, start, extension, max_dom, contains)
        domain = max_dom
        self._add_lead_sites([(site, new_sites[site]) for site in added], lead_builder.vectorize)
        self._add_lead_hoppings(new_hoppings, lead_builder.vectorize)
        _warn_same_side(
            [(lead._symmetry, iface) for lead, _, iface in self._leads], sym, interface
        )
        self._leads.append((lead_builder, domain, interface))
        self._paddings.append(sorted(added))
        return added

    def _add_lead_sites(self, sites: list[tuple[Site, Any]], vectorized: bool) -> None:
        """Add sites copied from a lead, one group per family and value."""
        groups: dict[tuple[SiteFamily, int], tuple[Monatomic, Any, list[tuple[int, ...]]]] = {}
        for site, value in sites:
            key = (site.family, id(value))
            groups.setdefault(key, (site.family, value, []))[2].append(site.tag)  # type: ignore[arg-type]
        for family, value, tags in groups.values():
            self._families.append(family)
            self._tags.append(np.array(tags, dtype=np.int64))
            self._onsite.append(value)
            self._onsite_vectorized.append(vectorized)
        self._lookup = None

    def _add_lead_hoppings(self, hoppings: list[tuple[Site, Site, Any]], vectorized: bool) -> None:
        """Set hoppings copied from a lead, leaving out those to sites not kept."""
        groups: dict[tuple[SiteFamily, SiteFamily, int], list[tuple[Site, Site, Any]]] = {}
        for a, b, value in hoppings:
            if self._site_index(a) >= 0 and self._site_index(b) >= 0:
                key = (a.family, b.family, id(value))
                groups.setdefault(key, []).append((a, b, value))
        for items in groups.values():
            ti = np.array([self._site_index(a) for a, _, _ in items], dtype=np.int64)
            si = np.array([self._site_index(b) for _, b, _ in items], dtype=np.int64)
            value = items[0][2]
            sites: Any
            if vectorized and callable(value):
                sites = (
                    SiteArray(items[0][0].family, [a.tag for a, _, _ in items]),
                    SiteArray(items[0][1].family, [b.tag for _, b, _ in items]),
                )
            else:
                sites = [(a, b) for a, b, _ in items]
            self._hoppings.append(
                _HoppingAssignment(ti, si, value, sites, vectorized=vectorized and callable(value))
            )

    def finalized(self, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None) -> System:
        """Freeze into a :class:`~mesoscopic.system.System` (see :meth:`Builder.finalized`)."""
        if not self._families:
            raise ValueError("the system has no sites")
        self._build_lookup()  # refuses a site added twice
        norbs_by_family: dict[SiteFamily, int] = {}
        for fam, value in zip(self._families, self._onsite):
            n = fam.norbs
            if n is None and not callable(value) and np.ndim(value) == 2:
                n = int(np.shape(value)[0])
            norbs_by_family.setdefault(fam, n or 1)
        norbs = np.concatenate(
            [
                np.full(len(t), norbs_by_family[f], dtype=np.int64)
                for f, t in zip(self._families, self._tags)
            ]
        )
        blocks = [f.positions(t) for f, t in zip(self._families, self._tags)]
        # Families of a lower dimension take the first coordinates (as System does).
        dim = max(b.shape[1] for b in blocks)
        pos = np.concatenate([np.pad(b, ((0, 0), (0, dim - b.shape[1]))) for b in blocks])
        onsite_groups = []
        start = 0
        for fam, tags, value, vectorized in zip(
            self._families, self._tags, self._onsite, self._onsite_vectorized
        ):
            idx = np.arange(start, start + len(tags), dtype=np.int64)
            k = norbs_by_family[fam]
            sites: Any = (
                (SiteArray(fam, tags, pos[idx]),)
                if vectorized
                else [Site(fam, tuple(int(x) for x in t)) for t in tags]
            )
            onsite_groups.append(
                TermGroup(
                    idx,
                    idx,
                    value,
                    (k, k),
                    sites,
                    onsite=True,
                    vectorized=vectorized and callable(value),
                )
            )
            start += len(tags)
        hopping_groups = []
        for assignment, keep in zip(self._hoppings, _latest_assignments(self._hoppings, len(pos))):
            if not np.any(keep):
                continue
            ti, si = assignment.targets[keep], assignment.sources[keep]
            shape = (int(norbs[ti[0]]), int(norbs[si[0]]))
            hopping_groups.append(
                TermGroup(
                    ti,
                    si,
                    assignment.value,
                    shape,
                    assignment.subset(keep, pos),
                    onsite=False,
                    vectorized=assignment.vectorized,
                )
            )
        leads, interfaces = [], []
        for lead_builder, domain, _ in self._leads:
            flead = _finalized_lead(
                lead_builder, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
            )
            sym = lead_builder._symmetry
            assert sym is not None
            images = [sym.act(domain, flead.sites[j]) for j in flead.interface_sites]
            idx = np.array([self._site_index(site) for site in images], dtype=np.int64)
            if np.any(idx < 0):
                missing = images[int(np.argmax(idx < 0))]
                raise ValueError(f"lead interface site {_described(missing)} is not in the system")
            interfaces.append(idx)
            leads.append(flead)
        paddings = [
            np.array([self._site_index(site) for site in padding], dtype=np.int64)
            for padding in self._paddings
        ]
        # Site objects for millions of sites are made only when asked for.
        make_sites = functools.partial(_sites_of, tuple(self._families), tuple(self._tags))
        return System(
            sites=make_sites,
            pos=pos,
            norbs=norbs,
            onsite=onsite_groups,
            hoppings=hopping_groups,
            leads=leads,
            lead_interfaces=interfaces,
            spin_degeneracy=spin_degeneracy,
            magnetic_flux=magnetic_flux,
            lead_paddings=paddings,
        )


def _sites_of(families: tuple[SiteFamily, ...], tags: tuple[NDArray[np.int64], ...]) -> list[Site]:
    """The Site objects of an ArrayBuilder's site groups, in order."""
    return [Site(f, tuple(int(x) for x in t)) for f, group in zip(families, tags) for t in group]


class _HoppingAssignment:
    """One assignment of a value to hoppings ``<targets|H|sources>`` of an ArrayBuilder."""

    __slots__ = ("sites", "sources", "targets", "value", "vectorized")

    def __init__(
        self,
        targets: NDArray[np.int64],
        sources: NDArray[np.int64],
        value: Any,
        sites: Any,
        *,
        vectorized: bool,
    ) -> None:
        self.targets = targets
        self.sources = sources
        self.value = value
        # Two SiteArrays (vectorized) or a list of (Site, Site) pairs.
        self.sites = sites
        self.vectorized = vectorized

    def subset(self, keep: NDArray[np.bool_], pos: NDArray[np.float64]) -> Any:
        """What a value function receives for the kept hoppings."""
        if isinstance(self.sites, tuple):
            a, b = self.sites
            return (
                SiteArray(a.family, a.tags[keep], pos[self.targets[keep]]),
                SiteArray(b.family, b.tags[keep], pos[self.sources[keep]]),
            )
        return [pair for pair, k in zip(self.sites, keep) if k]


def _latest_assignments(
    assignments: list[_HoppingAssignment], num_sites: int
) -> list[NDArray[np.bool_]]:
    """For each assignment, which of its hoppings no later assignment replaces.

    A hopping is the unordered pair of its sites, so ``(a, b)`` and ``(b, a)`` are one.
    """
    if not assignments:
        return []
    lo = np.concatenate([np.minimum(h.targets, h.sources) for h in assignments])
    hi = np.concatenate([np.maximum(h.targets, h.sources) for h in assignments])
    keys = lo * np.int64(num_sites) + hi
    # The last occurrence of each key wins: search the reversed order for first ones.
    _, first_reversed = np.unique(keys[::-1], return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[len(keys) - 1 - first_reversed] = True
    bounds = np.cumsum([0] + [len(h.targets) for h in assignments])
    return [keep[bounds[k] : bounds[k + 1]] for k in range(len(assignments))]


class _Substituted:
    """A value function whose parameters are supplied under other names."""

    def __init__(self, function: Callable[..., Any], substitutions: dict[str, str]) -> None:
        import inspect

        self.function = function
        signature = inspect.signature(function)
        self._renamed = {
            old: new for old, new in substitutions.items() if old in signature.parameters
        }
        parameters = [
            p.replace(name=self._renamed.get(p.name, p.name))
            for p in signature.parameters.values()
        ]
        self.__signature__ = signature.replace(parameters=parameters)
        self.__name__ = getattr(function, "__name__", "value_function")

    def __call__(self, *sites: Any, **params: Any) -> Any:
        back = {new: old for old, new in self._renamed.items()}
        return self.function(*sites, **{back.get(k, k): v for k, v in params.items()})


# --------------------------------------------------------------------------------------
# Peierls phases
# --------------------------------------------------------------------------------------

# Kwant's name for the finalized finite system, so that ``isinstance(fsyst,
# kwant.builder.FiniteSystem)`` holds in a ported script.
FiniteSystem = System


class _PeierlsHopping:
    """A hopping value times the Peierls phase ``phase(a, b)`` given as parameter `name`.

    The wrapped value (a number, a matrix or a value function) keeps its own parameters;
    `name` is added to them as a keyword-only parameter.
    """

    def __init__(self, value: Any, name: str) -> None:
        self.value = value
        self.name = name
        if callable(value):
            signature = inspect.signature(value)
            if name in signature.parameters:
                raise ValueError(
                    f"the hopping value function {getattr(value, '__name__', value)!r} "
                    f"already takes a parameter {name!r}; give add_peierls_phase another "
                    "peierls_parameter"
                )
            parameters = list(signature.parameters.values())
        else:
            plain = inspect.Parameter.POSITIONAL_OR_KEYWORD
            parameters = [inspect.Parameter("site1", plain), inspect.Parameter("site2", plain)]
            signature = inspect.Signature(parameters)
        added = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY)
        if parameters and parameters[-1].kind == inspect.Parameter.VAR_KEYWORD:
            parameters.insert(len(parameters) - 1, added)
        else:
            parameters.append(added)
        self.__signature__ = signature.replace(parameters=parameters)
        self.__name__ = getattr(value, "__name__", "hopping") if callable(value) else "hopping"

    def __call__(self, a: Any, b: Any, *args: Any, **params: Any) -> Any:
        phase = params.pop(self.name)
        value = self.value(a, b, *args, **params) if callable(self.value) else self.value
        factor = phase(a, b)
        if isinstance(a, SiteArray):  # one phase per hopping of the group
            factor = np.asarray(factor)
            array = np.asarray(value)
            if array.ndim >= 2:
                # A stack of matrices, or one constant matrix for the whole group.
                return factor[:, None, None] * array
            return factor * array
        return factor * value

    def __repr__(self) -> str:
        return f"<hopping {self.value!r} times the Peierls phase {self.name!r}>"


def _with_peierls_phase(builder: Builder, name: str) -> Builder:
    """A copy of `builder` whose hoppings take the Peierls phase parameter `name`."""
    result = Builder(
        builder.symmetry,
        conservation_law=builder.conservation_law,
        time_reversal=builder.time_reversal,
        particle_hole=builder.particle_hole,
        chiral=builder.chiral,
        vectorize=builder.vectorize,
    )
    result._sites = dict(builder._sites)
    result._hoppings = {
        key: _PeierlsHopping(value, name) for key, value in builder._hoppings.items()
    }
    result._adjacent = {site: set(nbrs) for site, nbrs in builder._adjacent.items()}
    return result


def add_peierls_phase(
    syst: Builder, peierls_parameter: str = "phi", fix_gauge: bool = True
) -> Any:
    """Finalize a Builder with every hopping multiplied by a Peierls phase, as Kwant's.

    Every hopping value ``<a|H|b>`` of the scattering region becomes
    ``phi(a, b) * value``, with ``phi`` a new parameter (named `peierls_parameter`) that
    takes a function ``phi(a, b)`` returning the phase, the format of the functions that
    :class:`~mesoscopic.physics.magnetic_gauge` returns. The hoppings of lead ``k`` take
    the parameter ``phi_lead{k}`` instead. The other parameters of value functions stay
    as they were.

    Parameters
    ----------
    syst : Builder
        A finite Builder (with or without leads) or a lead Builder.
    peierls_parameter : str
        The name of the phase parameter (default ``"phi"``).
    fix_gauge : bool
        If true (the default), also return a function of the magnetic field(s) that
        fixes the gauge and returns the parameters to pass at solve time.

    Returns
    -------
    fsyst : System or InfiniteSystem
        The finalized system.
    phases : callable
        Only if `fix_gauge`: ``phases(syst_field, *lead_fields, tol=1e-8,
        average=False)`` returns a dict ``{"phi": ..., "phi_lead0": ..., ...}`` of
        phase functions for those fields (see :class:`~mesoscopic.physics.magnetic_gauge`
        for the fields' format: flux density in units of ``phi_0 / l**2``).

    Examples
    --------
    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.square(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x, y) for x in range(2) for y in range(2))] = 0.0
    >>> syst[lat.neighbors()] = lambda a, b, t: -t
    >>> fsyst, phases = meso.builder.add_peierls_phase(syst)
    >>> h = fsyst.hamiltonian_submatrix(params=dict(t=1.0, **phases(0.5)))
    >>> loop = [0, 1, 3, 2, 0]  # the sites (0, 0), (0, 1), (1, 1), (1, 0)
    >>> product = np.prod([-h[i, j] for i, j in zip(loop, loop[1:])])
    >>> bool(np.isclose(product, np.exp(-1j * np.pi * 0.5)))
    True
    """
    if not isinstance(syst, Builder):
        raise TypeError(f"add_peierls_phase needs a Builder, got {type(syst).__name__}")
    if not isinstance(peierls_parameter, str) or not peierls_parameter.isidentifier():
        raise ValueError(
            f"peierls_parameter must be a valid parameter name, got {peierls_parameter!r}"
        )
    result = _with_peierls_phase(syst, peierls_parameter)
    names = [peierls_parameter]
    for k, lead in enumerate(syst.leads):
        if not isinstance(lead, BuilderLead):
            raise TypeError(
                f"lead {k} is a {type(lead).__name__}; add_peierls_phase needs leads "
                "attached with attach_lead (BuilderLead)"
            )
        name = f"{peierls_parameter}_lead{k}"
        names.append(name)
        result.leads.append(
            BuilderLead(_with_peierls_phase(lead.builder, name), lead.interface, lead.padding)
        )
    fsyst = result.finalized()
    if not fix_gauge:
        return fsyst

    from .physics.gauge import magnetic_gauge

    gauge = magnetic_gauge(fsyst)
    has_leads = bool(syst.leads)

    @functools.wraps(gauge.__call__)
    def phases(*fields: Any, **options: Any) -> dict[str, Any]:
        found = gauge(*fields, **options)
        if not has_leads:
            found = (found,)
        return dict(zip(names, found))

    phases.__doc__ = (
        "The Peierls phase parameters for magnetic fields: ``phases(syst_field, "
        "*lead_fields, tol=1e-8, average=False)`` returns a dict of phase functions "
        f"{names!r} to pass as params (see mesoscopic.physics.magnetic_gauge)."
    )
    return fsyst, phases
