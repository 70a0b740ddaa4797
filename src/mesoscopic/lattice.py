"""Bravais lattices with a basis, and the sites that live on them.

A lattice site is a family (a sublattice) plus integer coordinates, its *tag*.
Its real-space position is ``offset + tag @ prim_vecs``. Geometry follows Kwant,
so scripts written for it port unchanged (for example the honeycomb lattice of
constant ``a`` has primitive vectors ``(a, 0)`` and ``(a/2, a*sqrt(3)/2)`` and
sublattices at ``(0, 0)`` and ``(0, a/sqrt(3))``).

Examples
--------
>>> from mesoscopic import lattice
>>> lat = lattice.square(1.0, norbs=1)
>>> site = lat(2, 3)
>>> site.tag, tuple(float(x) for x in site.pos)
((2, 3), (2.0, 3.0))
>>> graphene = lattice.honeycomb()
>>> [len(kinds) for kinds in (graphene.neighbors(1), graphene.neighbors(2))]
[3, 6]
"""

from __future__ import annotations

import itertools
import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "HoppingKind",
    "Monatomic",
    "NoSymmetry",
    "Polyatomic",
    "Site",
    "SiteArray",
    "SiteFamily",
    "Symmetry",
    "Tag",
    "TranslationalSymmetry",
    "chain",
    "cubic",
    "general",
    "honeycomb",
    "kagome",
    "square",
    "triangular",
]


class Tag(tuple):
    """Integer lattice coordinates of a site: a tuple with elementwise arithmetic.

    Hashes and compares like the plain tuple (``lat(1, 2).tag == (1, 2)``), and adds,
    subtracts and negates elementwise as Kwant's tags do (``a.tag - b.tag``); a plain
    number is broadcast (``tag + 1``). Compared with a NumPy array it gives one bool.

    Examples
    --------
    >>> Tag((3, 4)) - (1, 1), -Tag((1, -2)), Tag((1, 2)) == (1, 2)
    ((2, 3), (-1, 2), True)
    """

    __slots__ = ()

    @property
    def dtype(self) -> type:
        """``int`` when every entry is an integer (as for lattice tags), else ``object``."""
        return int if all(isinstance(x, (int, np.integer)) for x in self) else object

    def _other(self, other: Any) -> tuple[Any, ...] | None:
        if isinstance(other, (int, np.integer, float, np.floating)) and not isinstance(
            other, (bool, np.bool_)
        ):
            return (other,) * len(self)
        try:
            values = tuple(np.asarray(other).ravel().tolist())
        except (TypeError, ValueError):
            return None
        return values if len(values) == len(self) else None

    def _combine(self, other: Any, op: Callable[[Any, Any], Any]) -> Any:
        values = self._other(other)
        if values is None:
            return NotImplemented
        return Tag(op(a, b) for a, b in zip(self, values))

    def __add__(self, other: Any) -> Any:
        return self._combine(other, lambda a, b: a + b)

    def __radd__(self, other: Any) -> Any:
        return self._combine(other, lambda a, b: b + a)

    def __sub__(self, other: Any) -> Any:
        return self._combine(other, lambda a, b: a - b)

    def __rsub__(self, other: Any) -> Any:
        return self._combine(other, lambda a, b: b - a)

    def __mul__(self, other: Any) -> Any:
        return self._combine(other, lambda a, b: a * b)

    __rmul__ = __mul__

    def __neg__(self) -> Tag:
        return Tag(-x for x in self)

    def __pos__(self) -> Tag:
        return self

    def __eq__(self, other: object) -> bool:
        if isinstance(other, np.ndarray):
            return other.shape == (len(self),) and tuple(other.tolist()) == tuple(self)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = tuple.__hash__


class SiteFamily:
    """A set of sites sharing a name and a number of orbitals per site, as Kwant's.

    Parameters
    ----------
    canonical_repr : str
        A string that determines the family: two families are equal (and hash equally)
        when their canonical representations are, and sort by it. Lattices build it from
        their type, primitive vectors, offset, name and norbs, so two calls of
        :func:`square` give the same family.
    name : str
    norbs : int or None
        Orbitals per site.

    Subclasses implement ``normalize_tag(tag)`` (the tag as stored, or ``TypeError`` /
    ``ValueError``) and, for positions, ``pos(tag)``.
    """

    def __init__(self, canonical_repr: str, name: str | None, norbs: int | None) -> None:
        if not isinstance(canonical_repr, str):
            raise TypeError(f"canonical_repr must be a string, got {canonical_repr!r}")
        self.canonical_repr = canonical_repr
        self.name = name
        self.norbs = _check_norbs(norbs)

    def __repr__(self) -> str:
        return self.canonical_repr

    def __str__(self) -> str:
        orbitals = f" with {self.norbs} orbitals" if self.norbs else ""
        if self.name:
            return f"<{type(self).__name__} site family {self.name}{orbitals}>"
        return f"<unnamed {type(self).__name__} site family{orbitals}>"

    def __hash__(self) -> int:
        return hash(self.canonical_repr)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, SiteFamily):
            return False
        return self.canonical_repr == other.canonical_repr

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def _order(self, other: Any) -> str:
        if not isinstance(other, SiteFamily):
            raise TypeError(
                f"site families are ordered among themselves, not with {type(other).__name__}"
            )
        return other.canonical_repr

    def __lt__(self, other: SiteFamily) -> bool:
        return self.canonical_repr < self._order(other)

    def __le__(self, other: SiteFamily) -> bool:
        return self.canonical_repr <= self._order(other)

    def __gt__(self, other: SiteFamily) -> bool:
        return self.canonical_repr > self._order(other)

    def __ge__(self, other: SiteFamily) -> bool:
        return self.canonical_repr >= self._order(other)

    def __call__(self, *tag: Any) -> Site:
        return Site(self, tag)

    def pos(self, tag: Sequence[int]) -> NDArray[np.float64]:
        raise NotImplementedError(f"site family {self.name!r} has no positions")

    def normalize_tag(self, tag: Sequence[Any]) -> Any:
        return Tag(int(t) for t in tag)


def _check_norbs(norbs: Any) -> int | None:
    """`norbs` as a positive int or None (TypeError for a non-number, as Kwant)."""
    if norbs is None:
        return None
    if isinstance(norbs, (bool, np.bool_)) or not isinstance(
        norbs, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"norbs must be a positive integer or None, got {norbs!r}")
    if not float(norbs).is_integer() or norbs < 1:
        raise ValueError(f"norbs must be a positive integer or None, got {norbs!r}")
    return int(norbs)


def _tag_repr(tag: Any) -> str:
    """A tag as Kwant prints it (its tags are integer arrays): ``array([1, -2])``."""
    try:
        entries = [int(t) for t in tag]
    except (TypeError, ValueError):
        return repr(tag)
    return f"array([{', '.join(map(str, entries))}])"


def _tag_str(tag: Any) -> str:
    try:
        entries = [int(t) for t in tag]
    except (TypeError, ValueError):
        return str(tag)
    return f"[{' '.join(map(str, entries))}]"


def _described(item: Any) -> str:
    """A short text for a site, a hopping or a sequence of sites in an error message:
    ``Site('a', (1, 2))``, with the family's name and the tag (a site's repr is Kwant's
    full text, which spells the whole lattice out)."""
    if isinstance(item, Site):
        return f"Site({item.family.name!r}, {tuple(item.tag)!r})"
    if isinstance(item, (tuple, list)) and item and all(isinstance(x, Site) for x in item):
        inner = ", ".join(_described(x) for x in item)
        return f"({inner})" if isinstance(item, tuple) else f"[{inner}]"
    return repr(item)


def _kwant_class_path(cls: type) -> str:
    """``module.Class`` of a site family class as Kwant spells it: this package's classes
    under Kwant's module paths (``kwant.lattice.Monatomic``), so that a family's repr, and
    hence ``repr(site)``, is Kwant's text, and digest-seeded disorder is Kwant's."""
    module = cls.__module__
    if module == "mesoscopic" or module.startswith("mesoscopic."):
        module = "kwant" + module[len("mesoscopic") :]
    return f"{module}.{cls.__name__}"


def _vectors_str(array: NDArray[np.float64]) -> str:
    """Vectors as Kwant's lattice descriptions print them: ``[1.0 0.0], [0.0 1.0]``."""
    rows = np.atleast_2d(array).tolist()
    return ", ".join("[" + " ".join(repr(float(x)) for x in row) + "]" for row in rows)


class Site:
    """A site: the pair ``(family, tag)``, as in Kwant. Hashable, immutable.

    A site behaves as the tuple ``(family, tag)``: ``family, tag = site`` and
    ``tuple(site)`` work, it equals (and hashes as) that tuple, and sites sort by family
    (its canonical representation) and then tag. Two sites are equal when their
    families are equal by value and their tags are equal. (It is not a ``tuple``
    instance, so that a site is never mistaken for a hopping or a list of sites.)

    Attributes
    ----------
    family : SiteFamily
    tag : Tag
        Integer lattice coordinates (a tuple with elementwise arithmetic).
    pos : ndarray
        Real-space position, shape (dim,).
    """

    # The tag is kept as given when it is a plain tuple of ints (lat(i, j)), and becomes a
    # Tag when first read: a plain tuple of ints is no work for Python's cyclic garbage
    # collector, which otherwise walks every site's tag again and again while millions of
    # sites are made.
    __slots__ = ("_hash", "_pos", "_tag", "family")

    family: SiteFamily
    _tag: Any

    def __init__(self, family: SiteFamily, tag: Any, _i_know_what_i_do: bool = False) -> None:
        if not _i_know_what_i_do:
            if not isinstance(family, SiteFamily):
                raise TypeError(f"a site's family must be a SiteFamily, got {family!r}")
            tag = family.normalize_tag(tag)
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "_tag", tag)
        object.__setattr__(self, "_hash", hash((family, tag)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("sites are immutable")

    @property
    def tag(self) -> Any:
        """Integer lattice coordinates (a :class:`Tag`)."""
        tag = self._tag
        if type(tag) is tuple:
            tag = Tag(tag)
            _set_site_tag(self, tag)
        return tag

    def __reduce__(self) -> tuple[Any, ...]:
        return (Site, (self.family, self.tag, True))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]

    def _pair(self, other: Any) -> tuple[Any, Any] | None:
        if isinstance(other, Site):
            return other.family, other.tag
        if type(other) is tuple and len(other) == 2:
            return other
        return None

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, Site):
            return self._hash == other._hash and (  # type: ignore[attr-defined]
                self.family == other.family and self._tag == other._tag
            )
        pair = self._pair(other)
        return pair is not None and (self.family, self.tag) == pair

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def _cmp(self, other: Any) -> tuple[Any, Any]:
        pair = self._pair(other)
        if pair is None:
            raise TypeError(f"sites are ordered among sites, not with {type(other).__name__}")
        return (self.family, self.tag), pair

    def __lt__(self, other: Any) -> bool:
        a, b = self._cmp(other)
        return a < b

    def __le__(self, other: Any) -> bool:
        a, b = self._cmp(other)
        return a <= b

    def __gt__(self, other: Any) -> bool:
        a, b = self._cmp(other)
        return a > b

    def __ge__(self, other: Any) -> bool:
        a, b = self._cmp(other)
        return a >= b

    def __iter__(self) -> Iterator[Any]:
        return iter((self.family, self.tag))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: Any) -> Any:
        return (self.family, self.tag)[index]

    def __repr__(self) -> str:
        # Kwant's string, exactly: scripts seed disorder with digest functions of
        # repr(site), and get Kwant's realization only from Kwant's text.
        return f"Site({self.family!r}, {_tag_repr(self.tag)})"

    def __str__(self) -> str:
        family = self.family
        return f"<Site {_tag_str(self.tag)} of {family.name if family.name else family}>"

    @property
    def pos(self) -> NDArray[np.float64]:
        # A value function reads it once per term and evaluation: the position is
        # computed once per site (family and tag never change) and handed out as a fresh
        # copy, so that a caller may modify what it got.
        try:
            cached = self._pos  # type: ignore[attr-defined]
        except AttributeError:
            position = self.family.pos(self.tag)
            if not isinstance(position, np.ndarray):
                return position
            cached = np.array(position)
            cached.flags.writeable = False
            object.__setattr__(self, "_pos", cached)
        return cached.copy()


_make_object = object.__new__
_set_site_family = Site.__dict__["family"].__set__
_set_site_tag = Site.__dict__["_tag"].__set__
_set_site_hash = Site.__dict__["_hash"].__set__
_set_site_pos = Site.__dict__["_pos"].__set__


def _new_site(
    family: SiteFamily, tag: tuple[int, ...], pos: NDArray[np.float64] | None = None
) -> Site:
    """A Site from a family and an already normalized tag, without the checks; `pos`,
    a read-only array equal to ``family.pos(tag)``, fills its position cache."""
    site = _make_object(Site)
    _set_site_family(site, family)
    _set_site_tag(site, tag)
    _set_site_hash(site, hash((family, tag)))
    if pos is not None:
        _set_site_pos(site, pos)
    return site


class SiteArray:
    """Many sites of one family at once, passed to vectorized value functions.

    Attributes
    ----------
    family : SiteFamily
    tags : ndarray of int, shape (n, d)
        Integer lattice coordinates, one row per site.
    pos : ndarray, shape (n, dim)
        Real-space positions.

    Examples
    --------
    >>> lat = square()
    >>> arr = SiteArray(lat, [[0, 0], [2, 1]])
    >>> arr.pos.tolist(), len(arr)
    ([[0.0, 0.0], [2.0, 1.0]], 2)
    """

    __slots__ = ("_pos", "family", "tags")

    def __init__(self, family: SiteFamily, tags: ArrayLike, pos: ArrayLike | None = None) -> None:
        self.family = family
        self.tags = np.asarray(tags, dtype=np.int64)
        if self.tags.ndim != 2:
            raise ValueError(f"tags must have shape (n, d), got {self.tags.shape}")
        self._pos = None if pos is None else np.asarray(pos, dtype=float)

    @property
    def tag(self) -> NDArray[np.int64]:
        return self.tags

    @property
    def pos(self) -> NDArray[np.float64]:
        if self._pos is None:
            self._pos = self.family.positions(self.tags)  # type: ignore[attr-defined]
        return self._pos

    def __len__(self) -> int:
        return len(self.tags)

    def __getitem__(self, index: Any) -> Site:
        return Site(self.family, tuple(int(t) for t in self.tags[index]))

    def __repr__(self) -> str:
        return f"SiteArray({self.family.name!r}, {len(self)} sites)"


#: Largest distance from the nearest integer, relative to max(1, |x|), at which a float is
#: taken as that integer (a tag computed as ``3 * 0.1 / 0.01`` is 30.000000000000004).
_INTEGER_RTOL = 1e-9


def _as_integer(value: Any, what: str) -> int:
    """`value` as an int: exact integers pass, floats within rounding of one are rounded."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    nearest = round(number) if np.isfinite(number) else None
    if nearest is None or abs(number - nearest) > _INTEGER_RTOL * max(1.0, abs(number)):
        raise ValueError(
            f"{what} must be an integer (floats are accepted only within rounding of an "
            f"integer), got {value!r}"
        )
    return int(nearest)


def _integer_tag(tag: Sequence[Any]) -> tuple[int, ...]:
    """A site tag as a tuple of ints; near-integer floats are rounded, others refused."""
    try:
        return tuple(_as_integer(t, "a site tag entry") for t in tag)
    except ValueError:
        raise ValueError(
            f"site tags must be integers (or floats within rounding of integers), got {tuple(tag)}"
        ) from None


def _length_scale(prim_vecs: NDArray[np.float64]) -> float:
    """Length of the shortest non-zero lattice vector: the scale for length tolerances."""
    n = len(prim_vecs)
    shifts = np.array(list(itertools.product(range(-2, 3), repeat=n)), dtype=float)
    lengths = np.linalg.norm(shifts @ prim_vecs, axis=1)
    return float(lengths[lengths > 1e-12 * lengths.max()].min())


def _check_vectors(prim_vecs: ArrayLike) -> NDArray[np.float64]:
    vecs = np.asarray(prim_vecs, dtype=float)
    if vecs.ndim != 2 or vecs.shape[0] > vecs.shape[1]:
        raise ValueError(
            "prim_vecs must be a (n_vectors, dim) array with n_vectors <= dim, "
            f"got shape {vecs.shape}"
        )
    if np.linalg.matrix_rank(vecs) < vecs.shape[0]:
        raise ValueError(f"prim_vecs must be linearly independent, got {vecs.tolist()}")
    return vecs


class Monatomic(SiteFamily):
    """A Bravais lattice with a single site per unit cell.

    Parameters
    ----------
    prim_vecs : array_like, shape (n, dim)
        Primitive vectors, one per row, in real-space length units.
    offset : array_like, shape (dim,), optional
        Position of the site with tag (0, ..., 0).
    name : str
    norbs : int, optional
        Orbitals per site. When omitted it is inferred from the values given
        to the Builder (and is 1 for scalar values).

    Examples
    --------
    >>> lat = Monatomic([[1, 0], [0, 1]], norbs=2)
    >>> lat(1, 2).pos.tolist()
    [1.0, 2.0]
    >>> lat.closest([0.9, 2.2])
    (1, 2)
    """

    def __init__(
        self,
        prim_vecs: ArrayLike,
        offset: ArrayLike | None = None,
        name: str = "",
        norbs: int | None = None,
    ) -> None:
        self.prim_vecs = _check_vectors(prim_vecs)
        self.prim_vecs.setflags(write=False)
        dim = self.prim_vecs.shape[1]
        self.offset = np.zeros(dim) if offset is None else np.array(offset, dtype=float)
        if self.offset.shape != (dim,):
            raise ValueError(f"offset must have shape ({dim},), got {self.offset.shape}")
        self.offset.setflags(write=False)
        # Equal by value, as Kwant's lattices: the type, geometry, name and norbs decide.
        # The text is Kwant's, character for character (see _kwant_class_path).
        norbs = _check_norbs(norbs)
        if name is None:
            name = ""
        canonical_repr = (
            f"{_kwant_class_path(type(self))}("
            f"{self.prim_vecs.tolist()!r}, {self.offset.tolist()!r}, {name!r}, {norbs!r})"
        )
        super().__init__(canonical_repr, name, norbs)
        self._pinv = np.linalg.pinv(self.prim_vecs)
        self._scale = _length_scale(self.prim_vecs)
        self.sublattices = [self]
        self._prim_vecs = self.prim_vecs  # Kwant's attribute name, used by Kwant's helpers
        self.dim = dim

    def __str__(self) -> str:
        orbitals = f" with {self.norbs} orbitals" if self.norbs else ""
        if self.name:
            return f"<Monatomic lattice {self.name}{orbitals}>"
        return (
            f"<unnamed Monatomic lattice, vectors {_vectors_str(self.prim_vecs)}, "
            f"origin {_vectors_str(self.offset)}{',' if orbitals else ''}{orbitals}>"
        )

    def __call__(self, *tag: Any) -> Site:
        # The common case, a tag of plain ints of the right length, skips normalization:
        # big systems are built one lat(i, j) call per site.
        if len(tag) == len(self.prim_vecs):
            for entry in tag:
                if type(entry) is not int:
                    break
            else:
                return _new_site(self, tag)
        return Site(self, tag)

    def normalize_tag(self, tag: Sequence[Any]) -> tuple[int, ...]:
        if len(tag) == 1 and isinstance(tag[0], (tuple, list, np.ndarray)):
            tag = tuple(tag[0])
        if len(tag) != self.prim_vecs.shape[0]:
            raise ValueError(
                f"lattice {self.name or 'site family'} takes {self.prim_vecs.shape[0]} integer "
                f"coordinates, got {len(tag)}: {tuple(tag)}"
            )
        return Tag(_integer_tag(tag))

    def pos(self, tag: Sequence[int]) -> NDArray[np.float64]:
        """Real-space position of the site with this tag."""
        return self.offset + np.asarray(tag, dtype=float) @ self.prim_vecs

    def positions(self, tags: ArrayLike) -> NDArray[np.float64]:
        """Positions of many tags at once, shape (n, dim)."""
        return (
            self.offset
            + np.asarray(tags, dtype=float).reshape(-1, len(self.prim_vecs)) @ self.prim_vecs
        )

    def vec(self, int_vec: Sequence[int]) -> NDArray[np.float64]:
        """Real-space vector of an integer lattice vector."""
        return np.asarray(int_vec, dtype=float) @ self.prim_vecs

    def closest(self, pos: ArrayLike) -> Tag:
        """Tag of the site closest to `pos` (a :class:`Tag`: compares equal to a tuple or an
        integer array of the same entries)."""
        pos = np.asarray(pos, dtype=float)
        if pos.shape != self.offset.shape:
            raise ValueError(
                f"pos must be a position of shape {self.offset.shape}, got shape {pos.shape}"
            )
        guess = np.rint((pos - self.offset) @ self._pinv).astype(int)
        best, best_d = tuple(int(t) for t in guess), np.inf
        # Ties (within rounding, relative to the lattice scale) keep the rounded guess.
        tolerance = 1e-12 * self._scale
        for shift in sorted(
            itertools.product((-1, 0, 1), repeat=len(guess)), key=lambda s: sum(map(abs, s))
        ):
            tag = guess + np.array(shift)
            d = np.linalg.norm(self.pos(tag) - pos)
            if d < best_d - tolerance:
                best, best_d = tuple(int(t) for t in tag), float(d)
        return Tag(best)

    def n_closest(self, pos: ArrayLike, n: int = 1) -> list[tuple[int, ...]]:
        return Polyatomic._n_closest_of([self], pos, n)

    def shape(self, function: Callable[[NDArray[np.float64]], bool], start: ArrayLike) -> Shape:
        """Sites of this lattice inside a region, found by flood fill from `start`.

        See :meth:`Polyatomic.shape`.
        """
        return Shape([self], function, start)

    def wire(self, center: ArrayLike, radius: float) -> Wire:
        """A lead's sites within `radius` of its axis (see :meth:`Polyatomic.wire`)."""
        return Wire([self], center, radius)

    def neighbors(self, n: int = 1, eps: float = 1e-8) -> list[HoppingKind]:
        """The n-th nearest neighbour hopping kinds (see :meth:`Polyatomic.neighbors`)."""
        return _neighbors(self.sublattices, self.prim_vecs, n, eps)


class Polyatomic:
    """A Bravais lattice with several sites per unit cell.

    Parameters
    ----------
    prim_vecs : array_like, shape (n, dim)
        Primitive vectors, one per row.
    basis : array_like, shape (n_basis, dim)
        Positions of the sites inside the unit cell; one sublattice each.
    name : str or sequence of str
        Name prefix, or one name per sublattice.
    norbs : int or sequence of int, optional
        Orbitals per site, for all sublattices or one value per sublattice.

    Attributes
    ----------
    sublattices : list of Monatomic
    prim_vecs : ndarray, shape (n, dim)

    Examples
    --------
    >>> lat = Polyatomic([[1, 0], [0.5, 3**0.5 / 2]], [[0, 0], [0, 1 / 3**0.5]])
    >>> a, b = lat.sublattices
    >>> round(float(abs(b(0, 0).pos[1] - a(0, 0).pos[1])), 6)
    0.57735
    """

    def __init__(
        self,
        prim_vecs: ArrayLike,
        basis: ArrayLike,
        name: str | Sequence[str] = "",
        norbs: int | Sequence[int | None] | None = None,
    ) -> None:
        self.prim_vecs = _check_vectors(prim_vecs)
        basis_arr = np.atleast_2d(np.asarray(basis, dtype=float))
        if basis_arr.ndim != 2 or basis_arr.shape[1] != self.prim_vecs.shape[1]:
            raise ValueError(
                f"basis must have shape (n_basis, {self.prim_vecs.shape[1]}), "
                f"got {basis_arr.shape}"
            )
        n_basis = len(basis_arr)
        if name is None:
            name = ""
        if isinstance(name, str):
            # As Kwant's: the prefix and the sublattice number, also for a single site.
            names = [f"{name}{i}" for i in range(n_basis)]
        else:
            names = list(name)
            if len(names) != n_basis:
                raise ValueError(f"got {len(names)} names for {n_basis} sublattices")
        if norbs is None or isinstance(norbs, (int, float, np.integer, np.floating)):
            norbs_list: list[int | None] = [_check_norbs(norbs)] * n_basis
        else:
            try:
                norbs_list = list(norbs)
            except TypeError:
                raise TypeError(
                    f"norbs must be an integer, None or one value per sublattice, got {norbs!r}"
                ) from None
            if len(norbs_list) != n_basis:
                raise ValueError(f"got {len(norbs_list)} norbs values for {n_basis} sublattices")
        self.sublattices = [
            Monatomic(self.prim_vecs, off, nm, nb)
            for off, nm, nb in zip(basis_arr, names, norbs_list)
        ]
        self._prim_vecs = self.prim_vecs  # Kwant's attribute name, used by Kwant's helpers
        self.dim = self.prim_vecs.shape[1]
        self.name = name

    def __repr__(self) -> str:
        offsets = [s.offset.tolist() for s in self.sublattices]
        return f"Polyatomic({self.prim_vecs.tolist()}, {offsets})"

    def __str__(self) -> str:
        names = ", ".join(str(sub.name) for sub in self.sublattices)
        return f"<Polyatomic lattice with sublattices {names}>"

    def vec(self, int_vec: Sequence[int]) -> NDArray[np.float64]:
        """Real-space vector of an integer lattice vector."""
        return np.asarray(int_vec, dtype=float) @ self.prim_vecs

    @staticmethod
    def _n_closest_of(
        families: Sequence[Monatomic], pos: ArrayLike, n: int
    ) -> list[tuple[int, ...]]:
        pos = np.asarray(pos, dtype=float)
        cands = []
        for fam in families:
            center = fam.closest(pos)
            for shift in itertools.product(range(-2, 3), repeat=len(center)):
                tag = tuple(c + s for c, s in zip(center, shift))
                cands.append((float(np.linalg.norm(fam.pos(tag) - pos)), tag))
        cands.sort()
        return [tag for _, tag in cands[:n]]

    def shape(self, function: Callable[[NDArray[np.float64]], bool], start: ArrayLike) -> Shape:
        """Sites of all sublattices inside a region, found by flood fill.

        Parameters
        ----------
        function : callable
            ``function(pos) -> bool``, true inside the region; `pos` is a
            real-space position, shape (dim,).
        start : array_like, shape (dim,)
            A point inside the region; the fill starts from the nearest sites.

        Returns
        -------
        Shape
            Usable as a Builder key (``syst[lat.shape(f, s)] = value``) or called
            on a Builder to list the sites. For a lead Builder the fill runs
            inside one period of its symmetry.

        Examples
        --------
        >>> lat = square(1.0)
        >>> disc = lat.shape(lambda p: p[0] ** 2 + p[1] ** 2 < 2.1, (0, 0))
        >>> len(list(disc()))
        9
        """
        return Shape(self.sublattices, function, start)

    def wire(self, center: ArrayLike, radius: float) -> Wire:
        """The sites of a lead within `radius` of its axis: an infinite cylinder (2-d: a strip).

        Parameters
        ----------
        center : array_like, shape (dim,)
            A point on the axis of the wire, which runs along the lead's period.
        radius : float
            Largest distance of a site from the axis, in real-space length units.

        Returns
        -------
        Wire
            Called with a translational symmetry (or a Builder that has one), as a Builder
            key of a lead does, it yields the sites of one period of the wire.

        Examples
        --------
        >>> from mesoscopic.builder import Builder
        >>> lat = square(1.0)
        >>> lead = Builder(TranslationalSymmetry((0, -1)))
        >>> lead[lat.wire((0, 0), 2.5)] = 4.0
        >>> sorted(site.tag[0] for site in lead.sites())
        [-2, -1, 0, 1, 2]
        """
        return Wire(self.sublattices, center, radius)

    def neighbors(self, n: int = 1, eps: float = 1e-8) -> list[HoppingKind]:
        """Hopping kinds between n-th nearest neighbours.

        Parameters
        ----------
        n : int
            1 for nearest neighbours, 2 for next-nearest, and so on; 0 gives the pairs of
            sites at the same position (each site with itself, as in Kwant).
        eps : float
            Tolerance for grouping distances into shells, relative to the length of the
            shortest lattice vector (so the result does not depend on the length unit).

        Returns
        -------
        list of HoppingKind
            Each pair of sites appears once (not also reversed).

        Examples
        --------
        >>> [k.delta for k in square().neighbors()]
        [(1, 0), (0, 1)]
        >>> [k.delta for k in square(1e-9).neighbors()]
        [(1, 0), (0, 1)]
        """
        return _neighbors(self.sublattices, self.prim_vecs, n, eps)


def _neighbors(
    subs: Sequence[Monatomic], prim_vecs: NDArray[np.float64], n: int, eps: float
) -> list[HoppingKind]:
    """The n-th nearest-neighbour hopping kinds of a lattice with sublattices `subs`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer (1 = nearest neighbours), got {n!r}")
    if not (isinstance(eps, (int, float, np.floating)) and 0 < eps < 0.1):
        raise ValueError(f"eps must be a small positive relative tolerance, got {eps!r}")
    # Distances are measured in units of the shortest lattice vector: every tolerance
    # below is then relative, and the shells of a lattice with constant 1e-10 are those
    # of the same lattice with constant 1.
    scale = _length_scale(prim_vecs)
    dim_tag = len(prim_vecs)
    # Search a box of lattice vectors large enough to contain n shells.
    reach = n + 2
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=dim_tag)))
    candidates = []
    for i, a in enumerate(subs):
        for j, b in enumerate(subs):
            vecs = (a.offset - b.offset) / scale + shifts @ (prim_vecs / scale)
            dist = np.linalg.norm(vecs, axis=1)
            for s, d in zip(shifts, dist):
                candidates.append((float(d), i, j, tuple(int(x) for x in s)))
    # Shell 0 holds each site itself (and sites of other sublattices at the same place).
    shells = [0.0]
    for d in sorted(c[0] for c in candidates):
        if d > shells[-1] + eps:
            shells.append(d)
    if n >= len(shells):
        raise ValueError(f"lattice has fewer than {n} neighbour shells within reach")
    target = shells[n]
    kinds = []
    seen = set()
    for d, i, j, s in sorted(candidates, key=lambda c: (c[1], c[2], [-x for x in c[3]])):
        if abs(d - target) > eps:
            continue
        if (s, i, j) in seen:
            continue
        seen.add((s, i, j))
        seen.add((tuple(-x for x in s), j, i))
        # One representative per pair: the earlier sublattice first, and for
        # hoppings within a sublattice the delta whose first non-zero entry is positive.
        first = next((x for x in s if x != 0), 0)
        if i > j or (i == j and first < 0):
            i, j, s = j, i, tuple(-x for x in s)
        kinds.append(HoppingKind(s, subs[i], subs[j]))
    return sorted(
        kinds,
        key=lambda k: (
            subs.index(k.family_a),
            subs.index(k.family_b),
            [abs(x) for x in k.delta][::-1],
            [-x for x in k.delta],
        ),
    )


class _PackedTags:
    """(family number, integer tag) pairs as int64 keys that sort as the pairs do.

    Family numbers below 64 and tags of `dims` entries, each within
    ``+-2**(56 // dims - 1)``; :meth:`encode` gives None for anything outside.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.bits = np.int64(56 // dims)
        self.half = np.int64(1) << (self.bits - 1)

    def encode(self, fams: NDArray[np.int64], tags: NDArray[np.int64]) -> NDArray[np.int64] | None:
        if fams.size and (fams.min() < 0 or fams.max() >= 64):
            return None
        if tags.size and (tags.min() <= -self.half or tags.max() >= self.half):
            return None
        keys = np.asarray(fams, dtype=np.int64)
        for k in range(self.dims):
            keys = (keys << self.bits) + (tags[:, k] + self.half)
        return keys

    def decode(self, keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        mask = (np.int64(1) << self.bits) - 1
        tags = np.empty((len(keys), self.dims), dtype=np.int64)
        rest = keys.copy()
        for k in range(self.dims - 1, -1, -1):
            tags[:, k] = (rest & mask) - self.half
            rest >>= self.bits
        return rest, tags


class Shape:
    """A region of a lattice, evaluated by flood fill when given a Builder.

    Used as a key in ``builder[shape] = value``. Calling it returns an iterator of
    the sites (optionally restricted to those that a Builder's symmetry maps to
    its fundamental domain).
    """

    def __init__(
        self,
        families: Sequence[Monatomic],
        function: Callable[[NDArray[np.float64]], bool],
        start: ArrayLike,
    ) -> None:
        if not callable(function):
            raise TypeError(f"shape function must be callable, got {function!r}")
        self.families = list(families)
        self.function = function
        self.start = np.asarray(start, dtype=float)
        dim = self.families[0].prim_vecs.shape[1]
        if self.start.shape != (dim,):
            raise ValueError(f"start must be a position of shape ({dim},), got {self.start.shape}")

    def __call__(self, symmetry: Any = None) -> Iterator[Site]:
        """The sites of the shape; with a symmetry, those of its fundamental domain.

        Parameters
        ----------
        symmetry : TranslationalSymmetry or Builder, optional
            A translational symmetry, or a Builder whose symmetry to use (as when the
            shape is a Builder key). The fill then stays inside the fundamental domain.
            The fill runs when the iterator is first advanced (as in Kwant).
        """
        sym = _symmetry_of(symmetry)
        yield from self._fill(sym)

    def _fill(self, symmetry: Any) -> list[Site]:
        def inside(site: Site) -> bool:
            return bool(self.function(site.pos))

        starts = []
        for fam in self.families:
            for tag in Polyatomic._n_closest_of([fam], self.start, 1 + 2 * len(fam.prim_vecs)):
                site = Site(fam, tag)
                if symmetry is not None:
                    site = symmetry.to_fd(site)
                if inside(site):
                    starts.append(site)
        if not starts:
            raise ValueError(
                f"the shape contains no lattice site near its start point {self.start.tolist()}"
            )
        unit_shifts = []
        for k in range(len(self.families[0].prim_vecs)):
            e = [0] * len(self.families[0].prim_vecs)
            e[k] = 1
            unit_shifts.append(tuple(e))
            e[k] = -1
            unit_shifts.append(tuple(e))
        # Shifts between sublattices within the same and neighbouring cells cover every
        # connected region a lattice can tile.
        seen = set(starts)
        queue = deque(starts)
        limit = 50_000_000
        while queue:
            site = queue.popleft()
            for fam in self.families:
                for shift in [(0,) * len(site.tag), *unit_shifts]:
                    tag = tuple(t + s for t, s in zip(site.tag, shift))
                    nb = Site(fam, tag)
                    if symmetry is not None:
                        nb = symmetry.to_fd(nb)
                    if nb in seen:
                        continue
                    if inside(nb):
                        seen.add(nb)
                        queue.append(nb)
                        if len(seen) > limit:
                            raise ValueError(
                                "shape fill exceeded 5e7 sites: is the shape function bounded?"
                            )
        order: dict[SiteFamily, int] = {f: k for k, f in enumerate(self.families)}
        return sorted(seen, key=lambda s: (order[s.family], s.tag))

    def _fill_arrays(self) -> list[tuple[Monatomic, NDArray[np.int64]]] | None:
        """The sites of ``_fill(None)``, in its order, as one sorted tag array per family.

        The same flood fill, a whole front of sites at a time: the shifts between
        neighbouring sites are symmetric, so a site next to the front of step ``L`` was
        either found at step ``L - 1``, ``L`` or is new. None when tags get too large
        for the integer keys used here (``_fill`` then does the work).
        """
        fams = self.families
        nfam = len(fams)
        d = len(fams[0].prim_vecs)
        if any(len(f.prim_vecs) != d for f in fams):
            return None
        encode = _PackedTags(d).encode
        decode = _PackedTags(d).decode

        def inside(f: NDArray[np.int64], tags: NDArray[np.int64]) -> NDArray[np.bool_]:
            result = np.zeros(len(f), dtype=bool)
            for k, fam in enumerate(fams):
                rows = np.flatnonzero(f == k)
                if len(rows):
                    function = self.function
                    pos = fam.positions(tags[rows])
                    result[rows] = [bool(function(p)) for p in pos]
            return result

        start_f, start_t = [], []
        for k, fam in enumerate(fams):
            for tag in Polyatomic._n_closest_of([fam], self.start, 1 + 2 * d):
                start_f.append(k)
                start_t.append(tag)
        f0 = np.array(start_f, dtype=np.int64)
        t0 = np.array(start_t, dtype=np.int64).reshape(-1, d)
        keep = inside(f0, t0)
        if not np.any(keep):
            raise ValueError(
                f"the shape contains no lattice site near its start point {self.start.tolist()}"
            )
        front = encode(f0[keep], t0[keep])
        if front is None:
            return None
        front = np.unique(front)
        shifts = np.zeros((2 * d + 1, d), dtype=np.int64)
        for k in range(d):
            shifts[2 * k + 1, k] = 1
            shifts[2 * k + 2, k] = -1
        found = [front]
        total = len(front)
        previous = np.zeros(0, dtype=np.int64)
        while len(front):
            _, tags = decode(front)
            cand_t = (tags[:, None, :] + shifts[None, :, :]).reshape(-1, d)
            cand_t = np.tile(cand_t, (nfam, 1))
            cand_f = np.repeat(np.arange(nfam, dtype=np.int64), len(front) * len(shifts))
            keys = encode(cand_f, cand_t)
            if keys is None:
                return None
            keys, first = np.unique(keys, return_index=True)
            new = ~(np.isin(keys, front, assume_unique=True) | np.isin(keys, previous))
            keys, first = keys[new], first[new]
            ok = inside(cand_f[first], cand_t[first])
            previous, front = front, keys[ok]
            found.append(front)
            total += len(front)
            if total > 50_000_000:
                raise ValueError("shape fill exceeded 5e7 sites: is the shape function bounded?")
        family_of, tags = decode(np.sort(np.concatenate(found)))
        return [(fam, tags[family_of == k]) for k, fam in enumerate(fams)]


def _symmetry_of(argument: Any) -> Any:
    """The translational symmetry a shape was called with: None, a symmetry, or a Builder."""
    if argument is None or isinstance(argument, NoSymmetry):
        return None
    if hasattr(argument, "to_fd") and hasattr(argument, "periods"):
        return argument
    if hasattr(argument, "symmetry"):
        return _symmetry_of(argument.symmetry)
    raise TypeError(
        "a lattice shape is called with nothing, a TranslationalSymmetry or a Builder, "
        f"got {argument!r}"
    )


class Wire:
    """An infinite cylinder along a lead's period: call it with the lead's symmetry.

    Made by :meth:`Polyatomic.wire`; used as the key of a lead Builder.
    """

    def __init__(self, families: Sequence[Monatomic], center: ArrayLike, radius: float) -> None:
        self.families = list(families)
        self.center = np.asarray(center, dtype=float)
        dim = self.families[0].prim_vecs.shape[1]
        if self.center.shape != (dim,):
            raise ValueError(
                f"center must be a position of shape ({dim},), got {self.center.shape}"
            )
        if isinstance(radius, bool) or not (
            isinstance(radius, (int, float, np.number)) and np.isfinite(radius) and radius > 0
        ):
            raise ValueError(f"radius must be a positive length, got {radius!r}")
        self.radius = float(radius)

    def __call__(self, symmetry: Any = None) -> Iterator[Site]:
        """Sites of one period of the wire, for a symmetry (or a Builder with one)."""
        sym = _symmetry_of(symmetry)
        if sym is None or len(np.atleast_2d(sym.periods)) != 1:
            raise ValueError(
                "lat.wire(center, radius) describes a lead: use it as the key of a Builder "
                "with a TranslationalSymmetry of one period (or call it with that symmetry), "
                f"got {symmetry!r}"
            )
        period = np.asarray(sym.periods, dtype=float).reshape(-1)
        direction = period / np.linalg.norm(period)
        center, radius_sq = self.center, self.radius**2

        def inside(pos: NDArray[np.float64]) -> bool:
            rel = pos - center
            perp = rel - (rel @ direction) * direction
            return bool(perp @ perp <= radius_sq)

        return Shape(self.families, inside, center)(sym)


def general(
    prim_vecs: ArrayLike,
    basis: ArrayLike | None = None,
    name: str | Sequence[str] = "",
    norbs: int | Sequence[int | None] | None = None,
) -> Monatomic | Polyatomic:
    """A Bravais lattice, with one site per cell (Monatomic) or a basis (Polyatomic).

    Parameters
    ----------
    prim_vecs : array_like, shape (n, dim)
        Primitive vectors in real-space length units.
    basis : array_like, shape (n_basis, dim), optional
        Site positions within the unit cell; omitted means one site at the origin.
    name : str or sequence of str
    norbs : int or sequence of int, optional
        Orbitals per site.

    Examples
    --------
    >>> lat = general([(1, 0), (0, 1)], [(0, 0), (0.5, 0.5)], norbs=1)
    >>> len(lat.sublattices)
    2
    """
    if basis is None:
        return Monatomic(prim_vecs, None, name if isinstance(name, str) else name[0], norbs)  # type: ignore[arg-type]
    _check_vectors(prim_vecs)
    basis_arr = np.asarray(basis, dtype=float)
    if basis_arr.ndim != 2:
        raise ValueError(
            f"basis must be a (n_basis, dim) array of site positions, got {np.shape(basis)}"
        )
    # As Kwant: a basis, even of one site, makes a Polyatomic lattice.
    return Polyatomic(prim_vecs, basis_arr, name, norbs)


def chain(a: float = 1.0, name: str = "", norbs: int | None = None) -> Monatomic:
    """One-dimensional chain of lattice constant `a`.

    >>> chain(2.0)(3).pos.tolist()
    [6.0]
    """
    return Monatomic([[a]], None, name, norbs)


def square(a: float = 1.0, name: str = "", norbs: int | None = None) -> Monatomic:
    """Square lattice of lattice constant `a`.

    >>> square(0.5)(2, 1).pos.tolist()
    [1.0, 0.5]
    """
    return Monatomic([[a, 0], [0, a]], None, name, norbs)


def cubic(a: float = 1.0, name: str = "", norbs: int | None = None) -> Monatomic:
    """Simple cubic lattice of lattice constant `a`.

    >>> cubic()(1, 2, 3).pos.tolist()
    [1.0, 2.0, 3.0]
    """
    return Monatomic([[a, 0, 0], [0, a, 0], [0, 0, a]], None, name, norbs)


def triangular(a: float = 1.0, name: str = "", norbs: int | None = None) -> Monatomic:
    """Triangular lattice: primitive vectors (a, 0) and (a/2, a sqrt(3)/2).

    >>> len(triangular().neighbors())
    3
    """
    return Monatomic([[a, 0], [a / 2, a * np.sqrt(3) / 2]], None, name, norbs)


def honeycomb(
    a: float = 1.0, name: str | Sequence[str] = "", norbs: int | Sequence[int | None] | None = None
) -> Polyatomic:
    """Honeycomb lattice (graphene) of lattice constant `a` (nearest-neighbour distance a/sqrt(3)).

    Primitive vectors (a, 0) and (a/2, a sqrt(3)/2); sublattices at (0, 0) and
    (0, a/sqrt(3)), as in Kwant.

    The sublattices are also ``lat.a`` and ``lat.b``, as in Kwant.

    >>> a, b = honeycomb().sublattices
    >>> round(float(np.linalg.norm(b(0, 0).pos - a(0, 0).pos)), 6)
    0.57735
    """
    return _Honeycomb(
        [[a, 0], [a / 2, a * np.sqrt(3) / 2]], [[0, 0], [0, a / np.sqrt(3)]], name, norbs
    )


class _Honeycomb(Polyatomic):
    """The honeycomb lattice, with its two sublattices also as ``a`` and ``b``."""

    @property
    def a(self) -> Monatomic:
        """Sublattice A, at the origin of the unit cell."""
        return self.sublattices[0]

    @property
    def b(self) -> Monatomic:
        """Sublattice B."""
        return self.sublattices[1]


def kagome(
    a: float = 1.0, name: str | Sequence[str] = "", norbs: int | Sequence[int | None] | None = None
) -> Polyatomic:
    """Kagome lattice of lattice constant `a` (three sites per cell).

    >>> len(kagome().neighbors())
    6
    """
    return Polyatomic(
        [[a, 0], [a / 2, a * np.sqrt(3) / 2]],
        [[0.0, 0.0], [a / 2, 0.0], [a / 4, a * np.sqrt(3) / 4]],
        name,
        norbs,
    )


# --------------------------------------------------------------------------------------
# Hopping kinds
# --------------------------------------------------------------------------------------


class SiteContainer(Protocol):
    """What :class:`HoppingKind` needs of a Builder: its sites and a membership test.

    A Builder with a symmetry lists the sites of its fundamental domain and contains
    every translate of them.
    """

    def sites(self) -> Iterable[Site]: ...

    def __contains__(self, site: object) -> bool: ...


class HoppingKind:
    """All hoppings ``(a(x + delta), b(x))`` between two site families.

    Parameters
    ----------
    delta : sequence of int
        Tag difference from the `family_b` site to the `family_a` site.
    family_a, family_b : SiteFamily
        Target and source families; `family_b` defaults to `family_a`.

    Used as a Builder key, it sets every such hopping whose two sites are both in
    the Builder. Called on a Builder, it yields those hoppings.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain()
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(4))] = 0
    >>> [(a.tag, b.tag) for a, b in HoppingKind((1,), lat)(syst)]
    [((1,), (0,)), ((2,), (1,)), ((3,), (2,))]
    """

    def __init__(
        self, delta: Iterable[int], family_a: SiteFamily, family_b: SiteFamily | None = None
    ) -> None:
        self.delta = Tag(_integer_tag(tuple(delta)))
        self.family_a = family_a
        self.family_b = family_a if family_b is None else family_b
        # Lattice families must have tags of the delta's length (Kwant checks this too).
        for fam in (self.family_a, self.family_b):
            n = getattr(fam, "prim_vecs", None)
            if n is not None and len(n) != len(self.delta):
                raise ValueError(
                    f"HoppingKind delta {tuple(self.delta)} has {len(self.delta)} entries "
                    f"but sites of {fam!r} have {len(n)} coordinates"
                )

    def __repr__(self) -> str:
        names = (self.family_a.name, self.family_b.name)
        return f"HoppingKind({self.delta}, {names[0]!r}, {names[1]!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HoppingKind)
            and self.delta == other.delta
            and self.family_a == other.family_a
            and self.family_b == other.family_b
        )

    def __hash__(self) -> int:
        return hash((self.delta, self.family_a, self.family_b))

    # Kwant's HoppingKind is a named tuple (delta, family_a, family_b): it unpacks and
    # indexes the same way here.
    def __iter__(self) -> Iterator[Any]:
        return iter((self.delta, self.family_a, self.family_b))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: Any) -> Any:
        return (self.delta, self.family_a, self.family_b)[index]

    def __call__(self, builder: SiteContainer) -> Iterator[tuple[Site, Site]]:
        # As Kwant: walk the `family_a` sites the Builder stores (for a lead, those of
        # its fundamental domain), so every hopping comes with `a` there and `b` may lie
        # in a neighbouring period.
        fam_a, fam_b, delta = self.family_a, self.family_b, self.delta
        for site in list(builder.sites()):
            if site.family != fam_a:
                continue
            if len(delta) != len(site.tag):
                raise ValueError(
                    f"HoppingKind delta {delta} has {len(delta)} entries but sites of "
                    f"{fam_a.name or 'this family'} have {len(site.tag)} coordinates"
                )
            source = Site(fam_b, tuple(t - d for t, d in zip(site.tag, delta)))
            if source in builder:
                yield site, source


# --------------------------------------------------------------------------------------
# Translational symmetry
# --------------------------------------------------------------------------------------


class Symmetry:
    """A symmetry group of a Builder, as Kwant's abstract base class.

    A symmetry divides space into domains numbered by group elements (tuples of
    integers); domain ``(0, ...)`` is the fundamental domain. Subclasses define
    :attr:`num_directions`, :meth:`which` and :meth:`act`; the rest follows.
    """

    @property
    def num_directions(self) -> int:
        """Number of elementary periods (the dimension of the group)."""
        raise NotImplementedError

    def which(self, site: Site) -> Any:
        """The group element that maps the fundamental domain onto the domain of `site`."""
        raise NotImplementedError

    def act(self, element: Any, a: Site, b: Site | None = None) -> Any:
        """Apply the group element to a site or, with `b`, to a hopping ``(a, b)``."""
        raise NotImplementedError

    def to_fd(self, a: Site, b: Site | None = None) -> Any:
        """Map `a` (and `b` by the same element) into the fundamental domain."""
        element = -Tag(self.which(a))
        return self.act(element, a) if b is None else self.act(element, a, b)

    def in_fd(self, site: Site) -> bool:
        """Whether `site` lies in the fundamental domain."""
        return not any(self.which(site))

    def has_subgroup(self, other: Symmetry) -> bool:
        """Whether `other` is a subgroup of this symmetry."""
        raise NotImplementedError

    def subgroup(self, *generators: Any) -> Symmetry:
        """The subgroup generated by `generators` (group elements)."""
        raise NotImplementedError


class NoSymmetry(Symmetry):
    """The trivial symmetry: one domain holding every site (a finite Builder's)."""

    def __repr__(self) -> str:
        return "NoSymmetry()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoSymmetry)

    def __hash__(self) -> int:
        return hash(NoSymmetry)

    @property
    def num_directions(self) -> int:
        return 0

    def which(self, site: Site) -> Tag:
        return Tag(())

    def act(self, element: Any, a: Site, b: Site | None = None) -> Any:
        if len(tuple(np.ravel(element))) != 0:
            raise ValueError(f"the only element of NoSymmetry is (), got {element!r}")
        return a if b is None else (a, b)

    def to_fd(self, a: Site, b: Site | None = None) -> Any:
        return a if b is None else (a, b)

    def in_fd(self, site: Site) -> bool:
        return True

    def has_subgroup(self, other: Symmetry) -> bool:
        return isinstance(other, NoSymmetry)

    def subgroup(self, *generators: Any) -> NoSymmetry:
        if generators:
            raise ValueError("NoSymmetry has no generators")
        return NoSymmetry()


class TranslationalSymmetry(Symmetry):
    """Discrete translational symmetry along one or several real-space periods.

    Parameters
    ----------
    *periods : array_like, each shape (dim,)
        The translation vectors in real-space length units. A lead has one period, pointing
        away from the scattering region (as in Kwant): a lead to the left of the system has
        ``TranslationalSymmetry((-a, 0))``. Several linearly independent periods (up to the
        lattice dimension, e.g. ``TranslationalSymmetry(*lat.prim_vecs)``) make a template
        for :meth:`Builder.fill`; such a builder cannot be a lead or be finalized.

    Notes
    -----
    Every site family used with the symmetry must have the periods as integer combinations
    of its primitive vectors. Sites are grouped into domains by the coordinates of their
    tags along the periods, so one translation by period ``i`` adds one to the ``i``-th
    domain index.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.square()
    >>> sym = TranslationalSymmetry((-1, 0))
    >>> sym.which(lat(3, 5)), sym.to_fd(lat(3, 5)).tag
    ((-3,), (0, 5))
    >>> TranslationalSymmetry((1, 0), (0, 2)).to_fd(lat(3, 5)).tag
    (0, 1)
    """

    def __init__(self, *periods: ArrayLike) -> None:
        if not periods:
            raise ValueError("TranslationalSymmetry needs at least one period")
        vectors = []
        for period in periods:
            vector = np.asarray(period, dtype=float).ravel()
            if vector.size == 0 or not np.all(np.isfinite(vector)) or not np.any(vector):
                raise ValueError(f"a period must be a non-zero finite vector, got {period!r}")
            vectors.append(vector)
        if len({v.size for v in vectors}) != 1:
            raise ValueError(
                f"the periods must have the same dimension, got {[p.tolist() for p in vectors]}"
            )
        self.periods = np.array(vectors)
        if np.linalg.matrix_rank(self.periods) < len(vectors):
            raise ValueError(
                f"the periods must be linearly independent, got {self.periods.tolist()}"
            )
        self.period = self.periods[0]
        # The domains are computed from the periods as first given; a reversed symmetry
        # shares them and only flips the sign of domain indices and translations.
        self._base_periods = self.periods.copy()
        self._reversed = False
        # Per family, the domain rows, det and tag shifts as Python ints (see _domain_ints).
        self._int_cache: dict[SiteFamily, Any] = {}
        # Keyed by the family objects themselves (hashed by identity), which pickling keeps
        # consistent with the sites; ids would not survive it.
        self._other_vectors: dict[SiteFamily, NDArray[np.int64]] = {}
        self._family_data: dict[
            SiteFamily, tuple[SiteFamily, NDArray[np.int64], NDArray[np.int64], int]
        ] = {}

    @property
    def num_directions(self) -> int:
        """Number of periods (1 for a lead)."""
        return int(self.periods.shape[0])

    def __repr__(self) -> str:
        return f"TranslationalSymmetry({', '.join(str(p.tolist()) for p in self.periods)})"

    def add_site_family(self, family: SiteFamily, other_vectors: ArrayLike | None = None) -> None:
        """Choose how the fundamental domain of `family` is cut, as Kwant's method.

        Parameters
        ----------
        family : Monatomic
            A site family (a sublattice) used with this symmetry.
        other_vectors : array_like of int, shape (m - k, m), optional
            Integer lattice vectors (in the family's primitive vectors) that complete the
            ``k`` periods to a basis of its ``m``-dimensional lattice. The domain of a site
            is the integer part of its coordinates along the periods in this basis. By
            default unit vectors complete the basis. The lead is the same either way; only
            which sites make up its cell 0 changes.
        """
        if not isinstance(family, Monatomic):
            raise TypeError(f"family must be a lattice site family, got {family!r}")
        if family in self._family_data:
            raise ValueError(f"site family {family!r} is already in use with this symmetry")
        dim = family.prim_vecs.shape[0]
        if other_vectors is None:
            vectors = np.zeros((0, dim), dtype=np.int64)
        else:
            raw = np.atleast_2d(np.asarray(other_vectors, dtype=float))
            if raw.shape != (dim - self.num_directions, dim) or not np.allclose(raw, np.rint(raw)):
                raise ValueError(
                    f"other_vectors must be {dim - self.num_directions} integer vector(s) of "
                    f"length {dim}, got {np.asarray(other_vectors).tolist()}"
                )
            vectors = np.rint(raw).astype(np.int64)
        self._other_vectors[family] = vectors
        self._int_cache.pop(family, None)
        try:
            self._data(family)
        except ValueError:
            del self._other_vectors[family]
            raise

    def _data(self, family: SiteFamily) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
        """Data of `family` for the periods as first given (before any reversal).

        Returns the integer periods in tag space, shape (k, m), and the integer matrix
        ``adjugate`` and integer ``det`` such that ``floor(adjugate @ tag / det)`` are the
        domain coordinates of a tag: exact integer arithmetic, so a site on a domain
        boundary is never misplaced by rounding.
        """
        key = family
        if key not in self._family_data:
            if not isinstance(family, Monatomic):
                raise TypeError(f"site family {family!r} has no lattice structure")
            prim = family.prim_vecs
            if prim.shape[1] != self._base_periods.shape[1]:
                raise ValueError(
                    f"periods {self.periods.tolist()} have dimension {self.periods.shape[1]} "
                    f"but lattice {family.name!r} lives in {prim.shape[1]} dimensions"
                )
            if self.num_directions > prim.shape[0]:
                raise ValueError(
                    f"{self.num_directions} periods exceed the dimension {prim.shape[0]} of "
                    f"lattice {family.name!r}"
                )
            scale = family._scale
            deltas: list[NDArray[np.int64]] = []
            for period in self._base_periods:
                coef, *_ = np.linalg.lstsq(prim.T, period, rcond=None)
                delta = np.rint(coef).astype(np.int64)
                # Integer coefficients within rounding (a dimensionless test) that rebuild
                # the period to rounding relative to the lattice scale.
                if not (
                    np.allclose(coef, delta, rtol=0, atol=1e-8)
                    and np.allclose(delta @ prim, period, rtol=0, atol=1e-8 * scale)
                ):
                    raise ValueError(
                        f"period {period.tolist()} is not a lattice vector of lattice "
                        f"{family.name!r} with primitive vectors {prim.tolist()}"
                    )
                deltas.append(delta)
            n = prim.shape[0]
            basis = list(deltas)
            others = self._other_vectors.get(key, np.zeros((0, n), np.int64))
            basis += list(others)
            if np.linalg.matrix_rank(np.array(basis, dtype=float)) < len(basis):
                raise ValueError(
                    f"other_vectors {others.tolist()} and the periods "
                    f"{[d.tolist() for d in deltas]} (in lattice vectors of {family!r}) do "
                    "not form a basis of the lattice"
                )
            # Complete the basis as Kwant does, so that a lead's unit cell (and what
            # attach_lead adds) is the same: each time, the primitive vector furthest
            # from the span of the vectors so far.
            while len(basis) < n:
                span = np.array(basis, dtype=float) @ prim
                _, _, vh = np.linalg.svd(span, full_matrices=False)
                residuals = prim - (prim @ vh.T) @ vh
                unit = np.zeros(n, dtype=np.int64)
                unit[int(np.argmax(np.linalg.norm(residuals, axis=1)))] = 1
                basis.append(unit)
            matrix = np.array(basis, dtype=np.int64).T
            det = round(float(np.linalg.det(matrix)))
            if det == 0:
                raise ValueError(
                    f"the periods {[d.tolist() for d in deltas]} and the completing vectors "
                    f"do not form a basis of lattice {family.name!r}"
                )
            adjugate = np.rint(det * np.linalg.inv(matrix)).astype(np.int64)
            if not np.array_equal(matrix @ adjugate, det * np.eye(n, dtype=np.int64)):
                raise ValueError(
                    f"the periods of {self!r} are too large for exact domain arithmetic"
                )
            self._family_data[key] = (
                family,
                np.array(deltas),
                adjugate[: self.num_directions],
                det,
            )
        _, delta_matrix, rows, det = self._family_data[key]
        return delta_matrix, rows, det

    def _ints(self, family: SiteFamily) -> Any:
        """Domain rows, det and tag shifts of `family` as Python ints, the signs of a
        reversed symmetry applied (rows: the domain, shifts: one period's translation)."""
        cached = self._int_cache.get(family)
        if cached is None:
            deltas, rows, det = self._data(family)
            sign = -1 if self._reversed else 1
            cached = (
                tuple(tuple(sign * int(x) for x in row) for row in rows),
                int(det),
                tuple(tuple(sign * int(x) for x in row) for row in deltas),
            )
            self._int_cache[family] = cached
        return cached

    def _domain_ints(self, site: Site) -> list[int]:
        """The domain of `site` (one int per period): exact integer arithmetic, as
        ``_domain``, without NumPy for one site."""
        cached = self._int_cache.get(site.family)
        rows, det, _ = cached if cached is not None else self._ints(site.family)
        tag = site.tag
        if self._reversed:
            # floor(-x / det) with the rows' sign flipped back: -floor(x / det).
            return [-(sum(map(operator.mul, row, tag)) // -det) for row in rows]
        return [sum(map(operator.mul, row, tag)) // det for row in rows]

    def _shift_ints(self, element: Sequence[int], site: Site) -> Site:
        """`site` translated by `element` periods (ints)."""
        cached = self._int_cache.get(site.family)
        deltas = (cached if cached is not None else self._ints(site.family))[2]
        tag = site.tag
        for e, delta in zip(element, deltas):
            if e:
                tag = tuple(map(operator.add, tag, [e * d for d in delta]))
        return _new_site(site.family, Tag(tag))

    def _domain(self, site: Site) -> NDArray[np.int64]:
        return np.array(self._domain_ints(site), dtype=np.int64)

    def _domains(self, family: SiteFamily, tags: NDArray[np.int64]) -> NDArray[np.int64]:
        """Domain indices of many tags of one family: shape (n, number of periods)."""
        _, rows, det = self._data(family)
        domain = (np.asarray(tags, dtype=np.int64) @ rows.T) // det
        return -domain if self._reversed else domain

    def _tag_shifts(self, family: SiteFamily) -> NDArray[np.int64]:
        """Tag shift of one translation along each period, shape (number of periods, m)."""
        deltas = self._data(family)[0]
        return -deltas if self._reversed else deltas

    def which(self, site: Site) -> Tag:
        """The domain that contains `site`: one integer per period, as a :class:`Tag`
        (``which(site) == (0,)`` in the fundamental domain of a lead), as in Kwant."""
        return Tag(int(d) for d in self._domain(site))

    def _which1(self, site: Site) -> int:
        """The domain of `site` along the first period, as an int."""
        return self._domain_ints(site)[0]

    def in_fd(self, site: Site) -> bool:
        """Whether `site` lies in the fundamental domain (domain 0)."""
        return not np.any(self._domain(site))

    def _element(self, n: Any) -> NDArray[np.int64]:
        """A group element as integers: one per period, of an integer type (as Kwant)."""
        values = np.atleast_1d(np.asarray(n, dtype=object))
        if values.ndim != 1 or len(values) != self.num_directions:
            raise ValueError(
                f"a group element of {self!r} is {self.num_directions} integer(s), got {n!r}"
            )
        if not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            for v in values
        ):
            raise ValueError(
                f"a group element of {self!r} must be integers (translations by whole "
                f"periods, of an integer type), got {n!r}"
            )
        return np.array([int(v) for v in values], dtype=np.int64)

    def has_subgroup(self, other: Symmetry) -> bool:
        """Whether every translation of `other` is one of this symmetry.

        True for :class:`NoSymmetry` and for a TranslationalSymmetry whose periods are
        integer combinations of these periods (within rounding relative to their length).
        """
        if isinstance(other, NoSymmetry):
            return True
        if not isinstance(other, TranslationalSymmetry):
            return False
        if other.periods.shape[1] != self.periods.shape[1]:
            return False
        if other.num_directions > self.num_directions:
            return False
        coef, *_ = np.linalg.lstsq(self.periods.T, other.periods.T, rcond=None)
        scale = float(np.max(np.linalg.norm(other.periods, axis=1)))
        rebuilt = (np.rint(coef).T @ self.periods) - other.periods
        return bool(
            np.allclose(coef, np.rint(coef), rtol=0, atol=1e-8)
            and np.allclose(rebuilt, 0, rtol=0, atol=1e-8 * scale)
        )

    def subgroup(self, *generators: Any) -> TranslationalSymmetry:
        """The subgroup generated by integer combinations of these periods.

        Parameters
        ----------
        *generators : sequence of int
            Each one integer per period; they must be linearly independent.
        """
        if not generators:
            raise ValueError("subgroup needs at least one generator")
        gens = [self._element(g) for g in generators]
        matrix = np.array(gens, dtype=np.int64)
        if np.linalg.matrix_rank(matrix.astype(float)) < len(gens):
            raise ValueError(f"the generators must be linearly independent, got {matrix.tolist()}")
        return TranslationalSymmetry(*(matrix @ self.periods))

    @property
    def site_family_data(
        self,
    ) -> dict[SiteFamily, tuple[NDArray[np.int64], NDArray[np.int64], int]]:
        """Per site family used so far: its integer periods (rows, in its lattice
        vectors), the integer matrix whose rows give the domain coordinates of a tag
        times ``det``, and ``det`` (non-zero)."""
        return {
            fam: (deltas, rows, det) for fam, (_, deltas, rows, det) in self._family_data.items()
        }

    def act(self, n: Any, site: Site, other: Site | None = None) -> Any:
        """Translate `site` (and `other`) by `n` periods: one integer per period (a plain
        int for one period); floats are refused, as in Kwant, even when integral."""
        element = self._element(n)
        moved = self._shift(element, site)
        if other is None:
            return moved
        return moved, self._shift(element, other)

    def _shift(self, element: NDArray[np.int64], site: Site) -> Site:
        return self._shift_ints([int(e) for e in element], site)

    def to_fd(self, site: Site, other: Site | None = None) -> Any:
        """Map `site` (and `other`, by the same translation) to the fundamental domain."""
        n = [-d for d in self._domain_ints(site)]
        if other is None:
            return self._shift_ints(n, site)
        return self._shift_ints(n, site), self._shift_ints(n, other)

    def reversed(self) -> TranslationalSymmetry:
        """The symmetry with the opposite periods and the same fundamental domain.

        As in Kwant, the domains keep their sites and only their numbering flips:
        ``reversed().which(site) == -which(site)``, so a lead and its reversed copy hold
        the same sites in their unit cell.
        """
        flipped = TranslationalSymmetry(*self._base_periods)
        flipped._other_vectors = self._other_vectors
        flipped._family_data = self._family_data
        flipped._reversed = not self._reversed
        flipped.periods = -self.periods
        flipped.period = flipped.periods[0]
        return flipped
