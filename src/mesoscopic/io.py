"""Reading and writing result datasets: NetCDF (always available) and Zarr (optional).

:func:`save` writes an :class:`xarray.Dataset` so that :func:`load` gives back the
same dataset, values, dtypes and attributes included, and so that a crash never
leaves a half-written file behind: the data go to a temporary name in the target's
directory, are flushed to disk (``fsync``), and only then replace the target with
``os.replace``. A reader therefore sees either the old file or the new one.

NetCDF files are written in the classic NetCDF3 format with SciPy's writer
(``engine="scipy"``), which needs no library beyond SciPy. NetCDF3 has no complex
numbers, no 64-bit integers, and attributes that are only strings and numbers, so
the following are encoded on writing and undone by :func:`load`:

* a complex variable ``x`` is stored as two real variables ``x__real`` and
  ``x__imag``;
* 64-bit and unsigned integers are stored as 32-bit integers when their values fit,
  otherwise as float64 when they are exact there (``|n| <= 2**53``), and the original
  dtype is restored on reading; larger integers raise an error;
* attributes that are not strings (numbers, booleans, ``None``, lists, dicts, NumPy
  scalars and arrays) are stored as JSON text and decoded on reading, so a
  provenance dictionary survives the round trip (NumPy arrays come back as lists).

Other programs can open the NetCDF files as they are (``ncdump``, xarray, netCDF4);
they see the encoded form. Zarr stores (a path ending in ``.zarr``) need the
optional ``zarr`` package; they keep complex numbers and 64-bit integers natively
and use the same attribute encoding.

:func:`load` treats a file as data, never as code or as a recipe for allocations: it
reads regular NetCDF files with an engine chosen from the file's first bytes (never by
xarray's guessing), reads a Zarr store only when ``format="zarr"`` is asked for, and
refuses a file whose header or attributes ask for more data than the file holds (a
damaged or hostile file) with an error naming it.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import math
import os
import pathlib
import re
import shutil
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["load", "save"]

FileFormat = Literal["netcdf", "zarr"]

# Attribute names this module adds to record how a value was encoded.
_JSON_ATTRS = "mesoscopic_json_attrs"
_ORIGINAL_DTYPE = "mesoscopic_dtype"
_COMPLEX_OF = "mesoscopic_complex_of"
_COMPLEX_PART = "mesoscopic_complex_part"
_RESERVED_ATTRS = (_JSON_ATTRS, _ORIGINAL_DTYPE, _COMPLEX_OF, _COMPLEX_PART)

_NETCDF3_INTEGERS = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
_INT32 = np.iinfo(np.int32)
_EXACT_FLOAT_INTEGER = 2**53
# Decoded data may be wider than stored data (CF scaling, restored integer dtypes), but
# never by more than this factor over the file's size: beyond it the header lies.
_MAX_DATA_PER_FILE_BYTE = 8
_TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp")


def save(
    dataset: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    format: FileFormat | None = None,
) -> pathlib.Path:
    """Write a dataset atomically to a NetCDF file or a Zarr store.

    Parameters
    ----------
    dataset : xarray.Dataset
        The data. Variables may be real, complex, integer or boolean; attributes of
        the dataset and of its variables may be strings, numbers, booleans, ``None``,
        lists, dicts, NumPy scalars or arrays.
    path : str or path-like
        Target file. Parent directories are created. An existing file is replaced
        only once the new one is complete.
    format : {"netcdf", "zarr"}, optional
        Default: ``"zarr"`` for a path ending in ``.zarr``, else ``"netcdf"``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If `dataset` is not an xarray Dataset, or an attribute cannot be encoded.
    ValueError
        If `format` is unknown, an integer variable is too large for NetCDF3, a
        complex variable is a dimension coordinate, or a name ends in ``__real`` /
        ``__imag`` in a way that would collide with the complex encoding.
    ImportError
        For Zarr when the ``zarr`` package is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, xarray as xr
    >>> from mesoscopic import io
    >>> data = xr.Dataset(
    ...     {"amplitude": ("energy", np.array([1 + 2j, 0.5j]), {"units": "1"})},
    ...     coords={"energy": [0.1, 0.2]},
    ...     attrs={"provenance": {"seed": 7, "note": None}},
    ... )
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = io.save(data, pathlib.Path(folder) / "result.nc")
    ...     back = io.load(path)
    >>> back.identical(data)
    True
    >>> back.attrs["provenance"]
    {'seed': 7, 'note': None}
    """
    import xarray as xr

    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset must be an xarray.Dataset, got {type(dataset).__name__}")
    target = pathlib.Path(path)
    chosen = _choose_format(target, format)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    if chosen == "netcdf":
        encoded = _encode(dataset, split_complex=True, narrow_integers=True)
        _atomic_write(target, lambda tmp: encoded.to_netcdf(tmp, engine="scipy"))
    else:
        _require_zarr()
        encoded = _encode(dataset, split_complex=False, narrow_integers=False)
        _atomic_write_directory(target, lambda tmp: encoded.to_zarr(tmp, mode="w"))
    return target


def load(
    path: str | os.PathLike[str],
    *,
    format: FileFormat | None = None,
) -> xr.Dataset:
    """Read a dataset written by :func:`save` (or any NetCDF file; a Zarr store on request).

    The data are read into memory and the file is closed, so it can be replaced or
    deleted right after. Encodings made by :func:`save` are undone: complex
    variables, original integer dtypes and non-string attributes are restored.

    Only a regular file is read, with the engine its first bytes call for (SciPy for
    NetCDF3; netCDF4 or h5netcdf for NetCDF4), and a Zarr store only with
    ``format="zarr"``: a directory or a ``.zarr`` path is never opened by guessing,
    since opening a store runs its codecs. A file whose header or attributes ask for
    more data than it holds is refused before anything is allocated.

    Parameters
    ----------
    path : str or path-like
        A NetCDF file (NetCDF3 is read with SciPy; a NetCDF4/HDF5 file needs the
        ``netCDF4`` or ``h5netcdf`` package), or a Zarr store with ``format="zarr"``.
    format : {"netcdf", "zarr"}, optional
        Default ``"netcdf"``. ``"zarr"`` reads a Zarr store (a directory; needs the
        ``zarr`` package): only read stores you trust.

    Returns
    -------
    xarray.Dataset
        The dataset, held in memory.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If `format` is unknown, `path` is a directory (or ends in ``.zarr``) without
        ``format="zarr"``, or the file is not NetCDF, is damaged, or declares sizes
        or dtypes its content cannot hold. The message names the file.
    ImportError
        For a NetCDF4 file without ``netCDF4`` or ``h5netcdf``, or for
        ``format="zarr"`` without ``zarr``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, xarray as xr
    >>> from mesoscopic import io
    >>> seeds = xr.Dataset({"T": ("seed", [0.9, 0.8])}, coords={"seed": np.arange(2)})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = io.load(io.save(seeds, pathlib.Path(folder) / "seeds.nc"))
    >>> back["seed"].dtype == seeds["seed"].dtype
    True
    """
    import xarray as xr

    source = pathlib.Path(path)
    if not source.exists():
        raise FileNotFoundError(f"no dataset at {str(source)!r}")
    if format is None:
        if source.is_dir():
            raise ValueError(
                f"{str(source)!r} is a directory, not a NetCDF file; a Zarr store is read "
                "only when asked for: io.load(path, format='zarr'), for a store you trust"
            )
        if source.suffix == ".zarr":
            raise ValueError(
                f"{str(source)!r} ends in .zarr; load reads NetCDF unless told otherwise: "
                "pass format='zarr' to read a Zarr store you trust"
            )
        return _read_netcdf(source)
    chosen = _choose_format(source, format)
    if chosen == "netcdf":
        return _read_netcdf(source)
    if not source.is_dir():
        raise ValueError(f"{str(source)!r} is not a Zarr store (a Zarr store is a directory)")
    _require_zarr()
    with xr.open_dataset(source, engine="zarr", chunks=None) as opened:
        _check_declared_sizes(opened, source, _directory_size(source))
        dataset = opened.load()
    return _decode(dataset, str(source))


def _read_netcdf(
    source: pathlib.Path,
    *,
    check_attrs: Callable[[dict[Any, Any]], None] | None = None,
    netcdf3_only: bool = False,
) -> xr.Dataset:
    """Read a regular NetCDF file into memory, checking it before the data are read.

    `check_attrs` sees the dataset's raw attributes before any data is read; it raises
    to refuse the file. With `netcdf3_only`, only classic NetCDF3 (read by SciPy, no
    other library involved) is accepted.
    """
    import xarray as xr

    if source.is_symlink() or not source.is_file():
        raise ValueError(
            f"{str(source)!r} is not a regular file (a directory, link or device); "
            "only NetCDF files are read"
        )
    with open(source, "rb") as handle:
        magic = handle.read(4)
    if magic[:3] == b"CDF":
        engine = "scipy"
    elif magic == b"\x89HDF" and not netcdf3_only:
        engine = _netcdf4_engine(source)
    elif netcdf3_only:
        raise ValueError(
            f"{str(source)!r} is not a NetCDF3 file written by mesoscopic (it starts with "
            f"{magic!r}, expected b'CDF')"
        )
    else:
        raise ValueError(
            f"{str(source)!r} is not a NetCDF file (it starts with {magic!r}, "
            "expected b'CDF' for NetCDF3 or b'\\x89HDF' for NetCDF4)"
        )
    try:
        opened = xr.open_dataset(source, engine=engine)
    except Exception as exc:
        raise _unreadable(source, exc) from exc
    with opened:
        if check_attrs is not None:
            check_attrs(dict(opened.attrs))
        _check_declared_sizes(opened, source, source.stat().st_size)
        try:
            dataset = opened.load()
        except Exception as exc:
            raise _unreadable(source, exc) from exc
    return _decode(dataset, str(source))


def _unreadable(source: pathlib.Path, exc: BaseException) -> ValueError:
    return ValueError(
        f"{str(source)!r} is not a readable NetCDF file; it is damaged or was not written "
        f"as NetCDF ({type(exc).__name__}: {exc})"
    )


def _netcdf4_engine(source: pathlib.Path) -> str:
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf")):
        if importlib.util.find_spec(module) is not None:
            return engine
    raise ImportError(
        f"{str(source)!r} is a NetCDF4 (HDF5) file; reading it needs the netCDF4 or "
        "h5netcdf package (files written by mesoscopic are NetCDF3 and need neither)"
    )


def _directory_size(folder: pathlib.Path) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, files in os.walk(folder)
        for name in files
    )


def _check_declared_sizes(opened: xr.Dataset, source: pathlib.Path, stored: int) -> None:
    """Refuse a file whose variables declare more data than the file can hold."""
    declared = 0
    for name, variable in opened.variables.items():
        size = math.prod(variable.shape)
        declared += size * variable.dtype.itemsize
        original = variable.attrs.get(_ORIGINAL_DTYPE)
        if original is not None:
            declared += size * _restorable_dtype(original, name, str(source)).itemsize
    limit = _MAX_DATA_PER_FILE_BYTE * stored + 2**20
    if declared > limit:
        raise ValueError(
            f"{str(source)!r} declares {declared} bytes of data in a file of {stored} bytes; "
            "it is damaged or not a dataset, and is not read"
        )


def _remove_stale_temporaries(target: pathlib.Path) -> None:
    """Remove temporaries of `target` left by writers that were killed (their pid is gone)."""
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        match = _TEMPORARY_NAME.fullmatch(leftover.name)
        if match is None or match["target"] != target.name or _process_alive(int(match["pid"])):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid we cannot ask about: keep the file
    return True


def _choose_format(path: pathlib.Path, format: str | None) -> FileFormat:
    if format is None:
        return "zarr" if path.suffix == ".zarr" or path.is_dir() else "netcdf"
    if format not in ("netcdf", "zarr"):
        raise ValueError(f"format must be 'netcdf' or 'zarr', got {format!r}")
    return "netcdf" if format == "netcdf" else "zarr"


def _require_zarr() -> None:
    if importlib.util.find_spec("zarr") is None:
        raise ImportError(
            "writing or reading Zarr needs the zarr package: pip install zarr "
            "(or use a .nc path for NetCDF, which needs nothing extra)"
        )


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary_sibling(target: pathlib.Path) -> pathlib.Path:
    # Same directory as the target, so that os.replace is a rename on one filesystem.
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _atomic_write(target: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    temporary = _temporary_sibling(target)
    try:
        write(temporary)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _atomic_write_directory(target: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    # A directory cannot replace a non-empty directory in one step: the old store is
    # moved aside first, so a reader may briefly find no store, but never half of one.
    temporary = _temporary_sibling(target)
    try:
        write(temporary)
        for root, _, files in os.walk(temporary):
            for name in files:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(target, old)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON-serializable")


def _encode_attrs(attrs: Mapping[Any, Any], owner: str) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    as_json: list[str] = []
    for key, value in attrs.items():
        name = str(key)
        if name in _RESERVED_ATTRS:
            raise ValueError(f"attribute name {name!r} of {owner} is reserved for the encoding")
        if isinstance(value, str):
            encoded[name] = value
            continue
        try:
            encoded[name] = json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"attribute {name!r} of {owner} cannot be stored: {exc}; use strings, "
                "numbers, booleans, None, lists, dicts or NumPy arrays"
            ) from exc
        as_json.append(name)
    if as_json:
        encoded[_JSON_ATTRS] = json.dumps(as_json)
    return encoded


def _decode_attrs(attrs: Mapping[Any, Any]) -> dict[Any, Any]:
    decoded = dict(attrs)
    names = decoded.pop(_JSON_ATTRS, None)
    if names is None:
        return decoded
    for name in json.loads(str(names)):
        if name in decoded:
            decoded[name] = json.loads(str(decoded[name]))
    return decoded


def _narrow_integers(values: np.ndarray, name: str) -> np.ndarray:
    if values.size == 0:
        return values.astype(np.int32)
    low, high = int(values.min()), int(values.max())
    if _INT32.min <= low and high <= _INT32.max:
        return values.astype(np.int32)
    if low >= -_EXACT_FLOAT_INTEGER and high <= _EXACT_FLOAT_INTEGER:
        return values.astype(np.float64)
    raise ValueError(
        f"variable {name!r} holds integers up to {max(abs(low), abs(high))}, beyond what "
        "NetCDF3 stores exactly (|n| <= 2**53); save it as a .zarr store instead"
    )


def _encode(dataset: xr.Dataset, *, split_complex: bool, narrow_integers: bool) -> xr.Dataset:
    import xarray as xr

    variables: dict[Hashable, xr.Variable] = {}
    coord_names: set[Hashable] = set()
    for name, variable in dataset.variables.items():
        is_coord = name in dataset.coords
        owner = f"variable {name!r}"
        attrs = _encode_attrs(variable.attrs, owner)
        values = variable.values
        if split_complex and np.iscomplexobj(values):
            if name in dataset.dims:
                raise ValueError(
                    f"dimension coordinate {name!r} is complex, which NetCDF cannot index; "
                    "use a real coordinate"
                )
            for part, data in (("real", values.real), ("imag", values.imag)):
                part_name = f"{name}__{part}"
                if part_name in dataset.variables:
                    raise ValueError(
                        f"cannot store complex variable {name!r}: the name {part_name!r} "
                        "it would be split into is already taken"
                    )
                part_attrs = {**attrs, _COMPLEX_OF: str(name), _COMPLEX_PART: part}
                variables[part_name] = xr.Variable(variable.dims, data, part_attrs)
                if is_coord:
                    coord_names.add(part_name)
            continue
        kind = values.dtype.kind
        if narrow_integers and kind in "iu" and values.dtype not in _NETCDF3_INTEGERS:
            attrs[_ORIGINAL_DTYPE] = values.dtype.str
            values = _narrow_integers(values, str(name))
        # A fresh Variable drops encodings inherited from a file this dataset came from.
        variables[name] = xr.Variable(variable.dims, values, attrs)
        if is_coord:
            coord_names.add(name)
    data_vars = {k: v for k, v in variables.items() if k not in coord_names}
    coords = {k: v for k, v in variables.items() if k in coord_names}
    return xr.Dataset(data_vars, coords=coords, attrs=_encode_attrs(dataset.attrs, "the dataset"))


def _restorable_dtype(original: Any, name: Hashable, origin: str) -> np.dtype[Any]:
    """The integer dtype a variable was saved from; anything else is refused."""
    try:
        dtype = np.dtype(str(original))
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "iu" or dtype.itemsize > 8:
        raise ValueError(
            f"{origin!r}: variable {name!r} asks to be restored to dtype {str(original)!r}; "
            "only integer dtypes of up to 8 bytes are restored, so the file is damaged or "
            "was not written by mesoscopic"
        )
    return dtype


def _restore_integers(
    values: np.ndarray, dtype: np.dtype[Any], name: Hashable, origin: str
) -> np.ndarray:
    limits = np.iinfo(dtype)
    if values.size and (
        values.dtype.kind not in "iuf"
        or (values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values % 1 == 0)))
        or values.min() < limits.min
        or values.max() > limits.max
    ):
        raise ValueError(
            f"{origin!r}: variable {name!r} holds values that are not {dtype} integers; "
            "the file is damaged"
        )
    return values.astype(dtype)


def _decode(dataset: xr.Dataset, origin: str = "the dataset") -> xr.Dataset:
    import xarray as xr

    parts: dict[str, dict[str, xr.Variable]] = {}
    variables: dict[Hashable, xr.Variable] = {}
    coord_names: set[Hashable] = set()
    order: list[Hashable] = []
    for name, variable in dataset.variables.items():
        attrs = dict(variable.attrs)
        values = variable.values
        complex_of = attrs.pop(_COMPLEX_OF, None)
        part = attrs.pop(_COMPLEX_PART, None)
        original = attrs.pop(_ORIGINAL_DTYPE, None)
        if original is not None:
            dtype = _restorable_dtype(original, name, origin)
            values = _restore_integers(values, dtype, name, origin)
        try:
            decoded_attrs = _decode_attrs(attrs)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{origin!r}: the attributes of variable {name!r} are damaged ({exc})"
            ) from exc
        decoded = xr.Variable(variable.dims, values, decoded_attrs)
        if complex_of is not None and part in ("real", "imag"):
            key = str(complex_of)
            if key not in parts:
                order.append(key)
                if name in dataset.coords:
                    coord_names.add(key)
            parts.setdefault(key, {})[str(part)] = decoded
            continue
        order.append(name)
        variables[name] = decoded
        if name in dataset.coords:
            coord_names.add(name)
    for key, pair in parts.items():
        real, imag = pair.get("real"), pair.get("imag")
        if real is None or imag is None:
            raise ValueError(
                f"{origin!r}: complex variable {key!r} is missing its real or imaginary part"
            )
        if (
            real.dims != imag.dims
            or real.shape != imag.shape
            or real.dtype != imag.dtype
            or real.dtype.kind != "f"
        ):
            raise ValueError(
                f"{origin!r}: the parts of complex variable {key!r} differ in dims, shapes "
                f"or dtypes ({real.dims} {real.shape} {real.dtype} and {imag.dims} "
                f"{imag.shape} {imag.dtype}); the file is damaged"
            )
        # Filled part by part: real + 1j * imag would turn an infinite imaginary part
        # into a NaN real part and lose the sign of zeros.
        combined = np.empty(real.shape, dtype=np.result_type(real.dtype, np.complex64))
        combined.real = real.values
        combined.imag = imag.values
        variables[key] = xr.Variable(real.dims, combined, real.attrs)
    data_vars = {k: variables[k] for k in order if k not in coord_names}
    coords = {k: variables[k] for k in order if k in coord_names}
    try:
        attrs = _decode_attrs(dataset.attrs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{origin!r}: the dataset's attributes are damaged ({exc})") from exc
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
