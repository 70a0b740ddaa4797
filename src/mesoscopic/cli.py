"""The ``meso`` command: run a study from a TOML file, inspect the installation, plot results.

``meso run study.toml`` builds a device from :mod:`mesoscopic.models`, sweeps its
parameters (energies batched through the fast solver), writes a NetCDF dataset
and a figure. ``meso info`` reports versions, optional components and devices.
``meso plot result.nc`` draws a result file.

A study file::

    [device]
    model = "quantum_point_contact"   # a function of mesoscopic.models
    width = 24                        # its keyword arguments
    length = 72

    [parameters]                      # fixed solve-time parameters
    confinement = 0.02

    [sweep]                           # grid axes: a list, or start/stop/num
    energy = { start = 0.3, stop = 1.1, num = 81 }
    gate = [0.2, 0.3]

    [observable]
    quantity = "transmission"         # or "transmission_matrix", "conductance_matrix"
    from_lead = 0
    to_lead = 1

    [units]                           # optional; default lattice units (t, h/e per cell)
    energy = "meV"                    # the energy axis and every parameter the model
                                      # declares an energy (meV) or a curvature
                                      # (meV/nm^2); needs [discretization]
    flux = "T"                        # parameters declared a flux (phi), in tesla

    [discretization]
    lattice_constant = 10.0           # nm
    effective_mass = 0.067

    [output]
    path = "out/qpc.nc"               # relative to the study file's folder
    figure = "out/qpc.png"

Every error in a study names the file, the field and what would be valid, and is
raised before anything is computed or written.

Outputs stay under the study file's folder: relative paths are taken from there, and a
path that leads outside it (``..``, an absolute path, a link) is refused. ``meso run
--output-dir DIR`` puts them under ``DIR`` instead, with the same rule. An existing
result (the NetCDF file or the figure) is never replaced without ``--overwrite``;
resuming the study's own checkpoint after an interruption is not replacing.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .solvers.options import DeviceName

__all__ = ["ConfigError", "Study", "load_study", "main", "run_study"]

QUANTITIES = ("transmission", "transmission_matrix", "conductance_matrix")
FIGURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".tif", ".tiff", ".webp")
UNITS = {
    "energy": ("t", "meV"),
    "flux": ("h/e per cell", "T"),
}
# Which entry of [units] governs each kind of parameter a model declares
# (mesoscopic.models.PARAMETER_KINDS); kinds not listed are never converted.
_UNIT_OF_KIND = {"energy": "energy", "energy/length^2": "energy", "flux": "flux"}


class ConfigError(ValueError):
    """A study file is malformed or inconsistent; the message names file and field."""


def _tomllib() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # pragma: no cover - Python 3.10

    return tomli  # pragma: no cover


@dataclass
class Study:
    """A validated study: what to build, what to sweep, where to write."""

    path: pathlib.Path
    model: str
    model_options: dict[str, Any]
    fixed: dict[str, Any]
    grid: dict[str, np.ndarray]
    quantity: str
    to_lead: int | None
    from_lead: int | None
    output: pathlib.Path
    figure: pathlib.Path | None
    units: dict[str, str] = field(default_factory=dict)
    discretization: dict[str, float] | None = None
    output_dir: pathlib.Path | None = None


def _error(path: pathlib.Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: [{where}] {message}")


def _axis(path: pathlib.Path, name: str, spec: Any) -> np.ndarray:
    where = f"sweep.{name}"
    if isinstance(spec, Mapping):
        missing = {"start", "stop", "num"} - set(spec)
        extra = set(spec) - {"start", "stop", "num"}
        if missing or extra:
            raise _error(
                path,
                where,
                "a range needs exactly start, stop and num "
                f"(missing: {sorted(missing)}, unknown: {sorted(extra)})",
            )
        num = spec["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise _error(path, where, f"num must be a positive integer, got {num!r}")
        try:
            values = np.linspace(float(spec["start"]), float(spec["stop"]), num)
        except (TypeError, ValueError) as exc:
            raise _error(path, where, f"start and stop must be numbers, got {spec!r}") from exc
    elif isinstance(spec, list):
        if not spec:
            raise _error(path, where, "the list of values is empty")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
            raise _error(path, where, f"values must be numbers, got {spec!r}")
        values = np.asarray(spec, dtype=float if any(isinstance(v, float) for v in spec) else int)
    else:
        raise _error(path, where, f"give a list of values or {{start, stop, num}}, got {spec!r}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise _error(path, where, "values must be finite")
    unique, counts = np.unique(values, return_counts=True)
    if unique.size < values.size:
        raise _error(
            path,
            where,
            f"the value {unique[counts > 1][0].item()!r} appears more than once; every "
            "value of an axis must be distinct",
        )
    return values


def _output_root(
    study_path: pathlib.Path, output_dir: str | os.PathLike[str] | None
) -> tuple[pathlib.Path, str]:
    if output_dir is None:
        return study_path.resolve().parent, "the study's folder"
    return pathlib.Path(output_dir).resolve(), "the output folder"


def _place(
    study_path: pathlib.Path,
    output_dir: str | os.PathLike[str] | None,
    where: str,
    raw: str | os.PathLike[str],
) -> pathlib.Path:
    """Where an output goes: under the study's folder, or under --output-dir."""
    root, name = _output_root(study_path, output_dir)
    target = (root / pathlib.Path(raw)).resolve()
    if target == root or not target.is_relative_to(root):
        raise _error(
            study_path,
            where,
            f"{str(raw)!r} leads to {target}, outside {name} {root}; outputs stay under "
            f"{name} (give --output-dir DIR on the command line to write under DIR)",
        )
    if target.exists() and not target.is_file():
        raise _error(study_path, where, f"{target} exists and is not a file")
    return target


def load_study(
    path: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None
) -> Study:
    """Read and validate a study file (see the module docstring for its fields).

    Parameters
    ----------
    path : str or path-like
        The study file (TOML).
    output_dir : str or path-like, optional
        Folder under which the outputs go (``meso run --output-dir``). Default: the
        study file's folder. Relative output paths are taken from it, and paths that
        lead outside it are refused.

    Raises
    ------
    ConfigError
        Naming the file, the field and the valid choices.
    """
    from . import models

    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such study file")
    toml = _tomllib()
    try:
        config = toml.loads(path.read_text())
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from exc
    known = {"device", "parameters", "sweep", "observable", "units", "discretization", "output"}
    unknown = set(config) - known
    if unknown:
        raise ConfigError(
            f"{path}: unknown table(s) {sorted(unknown)}; valid tables: {sorted(known)}"
        )
    for table, content in config.items():
        if not isinstance(content, Mapping):
            raise _error(
                path, table, f"must be a table ([{table}] with key = value lines), got {content!r}"
            )
    device = dict(config.get("device", {}))
    if "model" not in device:
        raise _error(path, "device", "missing 'model'; valid models: " + ", ".join(_model_names()))
    model = device.pop("model")
    if model not in _model_names():
        raise _error(
            path,
            "device.model",
            f"unknown model {model!r}; valid models: {', '.join(_model_names())}",
        )
    signature = inspect.signature(getattr(models, model))
    options = set(signature.parameters)
    bad = set(device) - options
    if bad:
        raise _error(
            path,
            "device",
            f"unknown option(s) {sorted(bad)} for {model}; valid options: {sorted(options)}",
        )
    sweep = config.get("sweep", {})
    if not sweep:
        raise _error(
            path, "sweep", "give at least one axis, e.g. energy = {start=0.1, stop=1, num=50}"
        )
    grid = {name: _axis(path, name, spec) for name, spec in sweep.items()}
    if "energy" not in grid:
        raise _error(path, "sweep", "the sweep needs an 'energy' axis (the Fermi energy)")
    fixed = dict(config.get("parameters", {}))
    for name, value in fixed.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _error(path, f"parameters.{name}", f"must be a number, got {value!r}")
    both = set(fixed) & set(grid)
    if both:
        raise _error(path, "parameters", f"{sorted(both)} are both fixed and swept; keep one")
    observable = dict(config.get("observable", {}))
    quantity = observable.pop("quantity", "transmission")
    if quantity not in QUANTITIES:
        raise _error(
            path,
            "observable.quantity",
            f"unknown quantity {quantity!r}; valid: {', '.join(QUANTITIES)}",
        )
    if quantity != "transmission":
        for name in ("to_lead", "from_lead"):
            if name in observable:
                raise _error(
                    path,
                    f"observable.{name}",
                    f"only with quantity = 'transmission'; {quantity} covers all lead pairs",
                )
    to_lead = observable.pop("to_lead", 1 if quantity == "transmission" else None)
    from_lead = observable.pop("from_lead", 0 if quantity == "transmission" else None)
    if observable:
        raise _error(
            path,
            "observable",
            f"unknown field(s) {sorted(observable)}; valid: quantity, to_lead, from_lead",
        )
    units = dict(config.get("units", {}))
    for kind, unit in units.items():
        if kind not in UNITS:
            raise _error(path, "units", f"unknown quantity {kind!r}; valid: {sorted(UNITS)}")
        if unit not in UNITS[kind]:
            raise _error(
                path,
                f"units.{kind}",
                f"unknown unit {unit!r}; valid units: {', '.join(UNITS[kind])}",
            )
    physical = any(unit != UNITS[kind][0] for kind, unit in units.items())
    discretization = config.get("discretization")
    if physical and discretization is None:
        raise _error(
            path,
            "discretization",
            "physical units need lattice_constant (nm), and effective_mass (m_e) "
            "for energies in meV, to convert to lattice units",
        )
    if discretization is not None:
        allowed = {"lattice_constant", "effective_mass"}
        if set(discretization) - allowed or "lattice_constant" not in discretization:
            raise _error(
                path,
                "discretization",
                "give lattice_constant (nm) and optionally "
                f"effective_mass (m_e); got {sorted(discretization)}",
            )
        try:
            models.Discretization(**discretization)
        except ValueError as exc:
            raise _error(path, "discretization", str(exc)) from exc
    output = dict(config.get("output", {}))
    bad = set(output) - {"path", "figure"}
    if bad:
        raise _error(path, "output", f"unknown field(s) {sorted(bad)}; valid: path, figure")
    raw_path = output.get("path", f"out/{path.stem}.nc")
    if not isinstance(raw_path, str):
        raise _error(path, "output.path", f"must be a file name ending in .nc, got {raw_path!r}")
    out_path = pathlib.Path(raw_path)
    if out_path.suffix != ".nc":
        raise _error(path, "output.path", f"must end in .nc (NetCDF), got {str(out_path)!r}")
    figure = output.get("figure", str(out_path.with_suffix(".png")))
    if figure is not False and not (
        isinstance(figure, str) and pathlib.Path(figure).suffix.lower() in FIGURE_FORMATS
    ):
        raise _error(
            path,
            "output.figure",
            f"must be a file name ending in one of {', '.join(FIGURE_FORMATS)}, or false; "
            f"got {figure!r}",
        )
    out_target = _place(path, output_dir, "output.path", out_path)
    figure_target = _place(path, output_dir, "output.figure", figure) if figure else None
    if figure_target == out_target:
        raise _error(path, "output.figure", "must differ from output.path")
    study = Study(
        path=path,
        model=model,
        model_options=device,
        fixed=fixed,
        grid=grid,
        quantity=quantity,
        to_lead=to_lead,
        from_lead=from_lead,
        output=out_target,
        figure=figure_target,
        units=units,
        discretization=discretization,
        output_dir=None if output_dir is None else pathlib.Path(output_dir),
    )
    _check_parameters(study)
    return study


def _model_names() -> list[str]:
    from . import models

    helpers = {"parameter_units"}  # functions of the module that build no device
    return sorted(n for n in models.__all__ if n[0].islower() and n not in helpers)


@lru_cache(maxsize=8)
def _build(model: str, options: tuple[tuple[str, Any], ...]) -> Any:
    from . import models

    return getattr(models, model)(**dict(options))


def _system(study: Study) -> Any:
    try:
        return _build(study.model, tuple(sorted(study.model_options.items())))
    except (TypeError, ValueError) as exc:
        raise _error(study.path, "device", f"cannot build {study.model}: {exc}") from exc


def _check_parameters(study: Study) -> None:
    fsys = _system(study)
    given = set(study.fixed) | (set(study.grid) - {"energy"})
    missing = sorted(set(fsys.parameters) - given)
    if missing:
        raise _error(
            study.path,
            "parameters",
            f"missing parameter(s) {missing} of {study.model}; it takes "
            f"{sorted(fsys.parameters)} (fix them in [parameters] or sweep them)",
        )
    unknown = sorted(given - set(fsys.parameters))
    if unknown:
        raise _error(
            study.path,
            "parameters",
            f"{study.model} has no parameter(s) {unknown}; it takes {sorted(fsys.parameters)}",
        )
    kinds = _parameter_kinds(study.path, study.model, sorted(given), study.units)
    first = {name: values[0] for name, values in study.grid.items() if name != "energy"}
    params = {
        name: _to_lattice_units(study.units, study.discretization, kinds[name], value)
        for name, value in {**study.fixed, **first}.items()
    }
    try:
        fsys.hamiltonian_submatrix(params=params, sparse=True)
    except (TypeError, ValueError) as exc:
        raise _error(
            study.path, "parameters", f"{study.model} rejects the parameter values: {exc}"
        ) from exc
    n_leads = len(fsys.leads)
    for name in ("to_lead", "from_lead"):
        lead = getattr(study, name)
        if lead is not None and (not isinstance(lead, int) or not 0 <= lead < n_leads):
            raise _error(
                study.path,
                f"observable.{name}",
                f"lead {lead!r} does not exist; {study.model} has leads 0..{n_leads - 1}",
            )


def _is_physical(units: Mapping[str, str], key: str) -> bool:
    return units.get(key, UNITS[key][0]) != UNITS[key][0]


def _parameter_kinds(
    path: pathlib.Path, model: str, names: Sequence[str], units: Mapping[str, str]
) -> dict[str, str | None]:
    """The kind each parameter's model declares (``None``: undeclared), ``energy`` included.

    With physical [units], a model that is no effective-mass discretization, or a
    parameter whose unit the model does not declare, is refused: [units] could not tell
    whether to convert it.
    """
    from . import models

    try:
        declared = models._model_units(model)
    except ValueError:
        kinds: dict[str, str] = {}
        effective_mass = None
    else:
        kinds, effective_mass = dict(declared.kinds), declared.effective_mass
    if any(_is_physical(units, key) for key in units):
        if effective_mass is False:
            raise _error(
                path,
                "units",
                f"{model} is not the discretization of an electron gas of effective mass "
                "m*: its parameters are in units of its own hopping t, which "
                "[discretization] does not describe; give the study in lattice units "
                "(remove [units])",
            )
        undeclared = sorted(name for name in names if name != "energy" and name not in kinds)
        if undeclared:
            raise _error(
                path,
                "units",
                f"{model} does not declare the unit of parameter(s) {undeclared}, so "
                "[units] cannot tell whether to convert them from physical units; give the "
                "study in lattice units (remove [units])",
            )
    return {"energy": "energy", **{name: kinds.get(name) for name in names if name != "energy"}}


def _to_lattice_units(
    units: Mapping[str, str],
    discretization: Mapping[str, float] | None,
    kind: str | None,
    values: Any,
) -> Any:
    """Values of a parameter of the given kind, from the study's units to lattice units."""
    from . import models

    key = _UNIT_OF_KIND.get(kind or "")
    if discretization is None or key is None or not _is_physical(units, key):
        return values
    return models.Discretization(**discretization).convert(str(kind), values)


def _unit_label(units: Mapping[str, str], kind: str | None) -> str | None:
    """The unit of a parameter of this kind in a study's units (None: undeclared)."""
    from . import models

    if kind is None:
        return None
    lattice, physical = models.PARAMETER_KINDS[kind]
    key = _UNIT_OF_KIND.get(kind)
    return physical if key is not None and _is_physical(units, key) else lattice


def _recipe(study: Study) -> dict[str, Any]:
    """What of a study decides its numbers: not where the study file or outputs are."""
    return {
        "model": study.model,
        "model_options": dict(sorted(study.model_options.items())),
        "quantity": study.quantity,
        "to_lead": study.to_lead,
        "from_lead": study.from_lead,
        "units": dict(sorted(study.units.items())),
        "discretization": study.discretization,
    }


def _study_observable(
    energy: Any,
    *,
    recipe: Mapping[str, Any],
    device: DeviceName,
    batch_axis: str = "energy",
    **params: Any,
) -> Any:
    """The study's quantity over a vector of `batch_axis` (energies, or a parameter's
    values: then one parameter batch at the single energy)."""
    import xarray as xr

    from . import batch

    fsys = _build(recipe["model"], tuple(sorted(recipe["model_options"].items())))
    units, discretization = recipe["units"], recipe["discretization"]
    kinds = _declared_kinds(recipe["model"])
    energies = _to_lattice_units(units, discretization, "energy", np.atleast_1d(energy))
    lattice_params = {
        k: _to_lattice_units(units, discretization, kinds.get(k), v) for k, v in params.items()
    }
    elements: Any = lattice_params
    if batch_axis != "energy":
        values = np.atleast_1d(lattice_params[batch_axis])
        elements = [dict(lattice_params, **{batch_axis: v}) for v in values]
    # The spin degeneracy travels with the values: G = g_s e^2/h T for a transmission,
    # and already included in a conductance matrix.
    attrs = {"spin_degeneracy": fsys.spin_degeneracy}
    if recipe["quantity"] == "transmission":
        t = batch.transmission(
            fsys,
            energies,
            recipe["to_lead"],
            recipe["from_lead"],
            params=elements,
            device=device,
        )
        if batch_axis != "energy":
            t = t[:, 0]  # (values, one energy)
        return xr.DataArray(t, dims=(batch_axis,), attrs=attrs)
    t = batch.transmission(fsys, energies, params=elements, device=device)
    if batch_axis != "energy":
        t = t[:, 0]
    if recipe["quantity"] == "conductance_matrix":
        channels = np.array([np.diag(np.sum(t_e, axis=0)) for t_e in t])
        t = fsys.spin_degeneracy * (channels - t)
    return xr.DataArray(t, dims=(batch_axis, "lead_to", "lead_from"), attrs=attrs)


def _study_batch_axis(grid: Mapping[str, Any]) -> str:
    """The axis a study solves in one call: its energies, or at a single energy the longest
    parameter axis (a gate or field sweep: one batch over the parameter's values)."""
    if len(grid["energy"]) > 1:
        return "energy"
    longest = max(grid, key=lambda name: len(grid[name]))
    return longest if len(grid[longest]) > 1 else "energy"


def _declared_kinds(model: str) -> Mapping[str, str]:
    from . import models

    try:
        return models.parameter_units(model)
    except ValueError:
        return {}


def run_study(
    study: Study,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    device: DeviceName = "cpu",
    progress: bool | None = None,
    overwrite: bool = False,
) -> Any:
    """Run a validated study: returns the dataset after writing it (and its figure).

    Outputs go under the study's folder (or ``study.output_dir``); an existing result
    file or figure is replaced only with ``overwrite=True``, and a checkpoint of a
    different study at the same place is then discarded. A checkpoint of this same
    study is resumed. Every refusal comes before anything is computed.
    """
    from functools import partial

    from . import sweep
    from ._version import __version__

    if device not in ("cpu", "gpu"):
        raise ConfigError(f"unknown device {device!r}; valid devices: cpu, gpu")
    if device == "gpu":
        from .solvers import _backend

        try:
            _backend.array_module("gpu")
        except RuntimeError as exc:
            raise ConfigError(f"--device gpu: {exc}") from exc
    names = ("lead_to", "lead_from")
    units = "1" if study.quantity != "conductance_matrix" else "e^2/h"
    output = sweep.Output(
        units,
        dims=() if study.quantity == "transmission" else names,
        long_name=study.quantity.replace("_", " "),
    )
    output_path = _place(study.path, study.output_dir, "output.path", study.output)
    figure_path = (
        None
        if study.figure is None
        else _place(study.path, study.output_dir, "output.figure", study.figure)
    )
    for target in (output_path, figure_path):
        if target is not None and (target.exists() or target.is_symlink()) and not overwrite:
            raise ConfigError(
                f"{study.path}: [output] {target} already exists; meso run does not replace "
                "results: pass --overwrite to replace it, or choose another [output] path "
                "or --output-dir"
            )
    n_points = math.prod(len(values) for values in study.grid.values())
    n_leads = len(_system(study).leads)
    per_point = 8 if study.quantity == "transmission" else 8 * n_leads**2
    batch_axis = _study_batch_axis(study.grid)
    try:
        sweep._check_memory(
            n_points,
            n_points // len(study.grid[batch_axis]),
            per_point,
            grid=[len(values) for values in study.grid.values()],
        )
    except ValueError as exc:
        raise _error(study.path, "sweep", str(exc)) from exc
    observable = sweep.Observable(
        partial(_study_observable, recipe=_recipe(study), device=device, batch_axis=batch_axis),
        outputs={study.quantity: output},
        name=f"{study.model}.{study.quantity}",
    )
    executor: sweep.ExecutorName = (
        "dask" if scheduler else ("processes" if workers and workers > 1 else "serial")
    )
    kinds = _parameter_kinds(study.path, study.model, [*study.grid, *study.fixed], study.units)
    axis_units = {
        name: unit
        for name in study.grid
        if (unit := _unit_label(study.units, kinds[name])) is not None
    }
    # The fixed parameters are stored as given in the study: say in which unit.
    fixed_units = {
        name: unit
        for name in study.fixed
        if (unit := _unit_label(study.units, kinds[name])) is not None
    }
    if figure_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"{study.path}: [output.figure] drawing {figure_path.name} needs matplotlib "
                "(pip install 'mesoscopic[plot]'), or set figure = false"
            ) from exc
    output_path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = output_path.with_suffix("")
    data = sweep.run_sweep(
        observable,
        study.grid,
        fixed_params=study.fixed,
        batch_axis=batch_axis,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        checkpoint=checkpoint,
        progress=progress,
        units=axis_units,
        overwrite=overwrite,
        attrs={
            "title": f"{study.model} study from {study.path.name}",
            "model": study.model,
            "study_file": str(study.path),
            "created_with": f"mesoscopic {__version__}",
            "fixed_params_units": fixed_units,
        },
    )
    if figure_path is not None:
        plot_dataset(data, figure_path)
    return data


def _figure_array(data: Any, variable: str | None) -> tuple[Any, str]:
    """The 0-, 1- or 2-D slice of a result that its figure draws, and what was sliced.

    Output axes (``lead_to``, ``lead_from``) are taken at the last (first) lead; axes
    of length one are dropped (a G(V_g) measurement at one Fermi energy is a curve over
    the gate); beyond two axes the rest are taken at their first value. The slice
    values go into the title.
    """
    names = [v for v in data.data_vars if data[v].dtype.kind in "fiu"]
    if variable is None:
        if not names:
            raise ValueError("the dataset has no numeric variable to plot")
        variable = names[0]
    if variable not in data.data_vars:
        raise ValueError(f"no variable {variable!r}; the dataset has {list(data.data_vars)}")
    array = data[variable]
    selection: dict[Any, int] = {}
    for dim in array.dims:
        if dim not in data.coords or str(dim).startswith("lead"):
            selection[dim] = -1 if dim == "lead_to" else 0
        elif array.sizes[dim] == 1:
            selection[dim] = 0
    remaining = [d for d in array.dims if d not in selection]
    kept = ["energy"] if "energy" in remaining else []
    kept += [d for d in remaining if d not in kept][: 2 - len(kept)]
    selection.update({d: 0 for d in remaining if d not in kept})
    sliced = ", ".join(
        f"{d} = {data[d].values[i]:g}"
        + (f" {data[d].attrs['units']}" if "units" in data[d].attrs else "")
        for d, i in selection.items()
        if d in data.coords
    )
    return array.isel(selection), sliced


def plot_dataset(
    data: Any, figure: str | os.PathLike[str], *, variable: str | None = None
) -> pathlib.Path:
    """Draw a result dataset: a line per curve for 1-D data, a map for 2-D data.

    Axes of length one are dropped (their value goes into the title): a sweep over one
    parameter at a single energy is drawn as a curve against that parameter, and a
    single point as a marker. The figure is written atomically (a temporary file, then a
    rename), in the format its suffix names (default PNG).
    """
    import matplotlib

    from . import io as _io

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    array, sliced = _figure_array(data, variable)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if array.ndim == 0:
        x = next((c for c in ("energy", *array.coords) if c in array.coords), None)
        xvalue = float(array.coords[x].values) if x is not None else 0.0
        ax.plot([xvalue], [float(array.values)], "o")
        if x is not None:
            unit = array.coords[x].attrs.get("units")
            ax.set_xlabel(str(x) + (f" [{unit}]" if unit else ""))
        unit = array.attrs.get("units")
        ax.set_ylabel(str(array.name) + (f" [{unit}]" if unit else ""))
    elif array.ndim == 1:
        array.plot(ax=ax, marker="." if array.size <= 30 else None)
    else:
        x = "energy" if "energy" in array.dims else array.dims[-1]
        other = next(d for d in array.dims if d != x)
        if array.sizes[other] <= 8:  # a few curves read better than a coarse map
            array.plot.line(ax=ax, x=x, hue=other, marker="." if array.sizes[x] <= 30 else None)
        else:
            array.plot(ax=ax, x=x)
    title = data.attrs.get("title", str(array.name))
    ax.set_title(title + (f"\n{sliced}" if sliced else ""), fontsize=10)
    fig.tight_layout()
    figure = pathlib.Path(figure)
    figure.parent.mkdir(parents=True, exist_ok=True)
    image_format = figure.suffix.lower().lstrip(".") or "png"
    # Drawn to a temporary file that then replaces the figure: an interrupted save
    # never leaves half an image, nor destroys the previous one.
    _io._remove_stale_temporaries(figure)
    try:
        _io._atomic_write(
            figure, lambda temporary: fig.savefig(temporary, dpi=120, format=image_format)
        )
    finally:
        plt.close(fig)
    return figure


def _info() -> str:
    import platform

    import numpy
    import scipy

    from ._version import __version__

    lines = [
        f"mesoscopic {__version__}",
        f"python {platform.python_version()}",
        f"numpy {numpy.__version__}",
        f"scipy {scipy.__version__}",
        f"cpus {os.cpu_count()}",
    ]
    for module in ("xarray", "matplotlib", "dask", "distributed", "tqdm", "cupy"):
        try:
            mod = __import__(module)
            lines.append(f"{module} {getattr(mod, '__version__', 'installed')}")
        except Exception:
            lines.append(f"{module} not installed")
    try:
        import cupy

        lines.append(f"gpu devices {cupy.cuda.runtime.getDeviceCount()}")
    except Exception:
        lines.append("gpu none (device='gpu' needs CuPy and a CUDA GPU)")
    lines.append("models " + ", ".join(_model_names()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meso`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="meso", description="mesoscopic quantum transport")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a study described by a TOML file")
    run.add_argument("study", help="the study file (TOML)")
    run.add_argument("--workers", type=int, default=None, help="local worker processes")
    run.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
    run.add_argument("--device", default="cpu", help="cpu or gpu")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument(
        "--output-dir",
        default=None,
        help="write the outputs under this folder (default: the study file's folder)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing result file and figure (and a checkpoint of another study)",
    )
    sub.add_parser("info", help="versions, optional components, devices, models")
    plot = sub.add_parser("plot", help="draw a result file")
    plot.add_argument("result", help="a NetCDF file written by meso run")
    plot.add_argument("--out", default=None, help="figure path (default: next to the result)")
    plot.add_argument("--variable", default=None, help="which variable to draw")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            print(_info())
        elif args.command == "run":
            if args.workers is not None and args.workers < 1:
                raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
            study = load_study(args.study, output_dir=args.output_dir)
            data = run_study(
                study,
                workers=args.workers,
                scheduler=args.scheduler,
                device=args.device,
                progress=not args.no_progress and None,
                overwrite=args.overwrite,
            )
            print(f"wrote {study.output}" + (f" and {study.figure}" if study.figure else ""))
            del data
        else:
            from . import io

            result = pathlib.Path(args.result)
            if not result.is_file():
                raise ConfigError(f"{result}: no such result file")
            data = io.load(result)
            out = plot_dataset(
                data, args.out or result.with_suffix(".png"), variable=args.variable
            )
            print(f"wrote {out}")
    except (ConfigError, ValueError) as exc:
        print(f"meso: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ImportError) as exc:  # a disk, a permission, a missing package
        print(f"meso: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
