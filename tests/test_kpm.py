"""Kernel polynomial method: densities of states and Hall conductivities against exact results.

Physics checks: the density of states of a chain and of a square lattice against their closed
forms; the integral of the density of states is the number of orbitals (exactly, by the
quadrature); the Kubo-Bastin Hall conductivity of a Hofstadter torus is quantized in the gaps
and odd in the field. API checks: reproducibility with ``rng`` (the same numbers as Kwant 1.5
for the same seed, recorded below), batching independence, and clear errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import ellipk

import mesoscopic as meso
from mesoscopic import kpm

# --------------------------------------------------------------------------------------
# model Hamiltonians
# --------------------------------------------------------------------------------------


def ring(n: int, t: float = 1.0, twist: float = 0.0) -> sp.csr_matrix:
    """A closed chain of n sites, hopping -t, total phase n * twist around the ring."""
    hop = -t * np.exp(1j * twist)
    rows = np.arange(n)
    cols = (rows + 1) % n
    h = sp.csr_matrix((np.full(n, hop), (cols, rows)), shape=(n, n))
    return (h + h.conj().T).tocsr()


def square_torus(size: int) -> sp.csr_matrix:
    """Square lattice on a size x size torus, hopping -1, with small twists that lift the
    degeneracies of the finite torus (so it samples the infinite lattice's density)."""
    eye = sp.identity(size, format="csr")
    return (
        sp.kron(ring(size, twist=0.3 / size), eye) + sp.kron(eye, ring(size, twist=0.7 / size))
    ).tocsr()


def hofstadter_torus(size: int, phi: float) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Square lattice on a torus with flux phi per plaquette (Landau gauge), hopping -1.

    Returns H and the velocities v_d = i[H, r_d], built from the bond vectors (the torus has
    no global position operator, but every bond has a displacement).
    """
    n = size * size
    x, y = np.divmod(np.arange(n), size)
    rows, cols, values, dx, dy = [], [], [], [], []
    for step_x, step_y in [(1, 0), (0, 1)]:
        target = ((x + step_x) % size) * size + (y + step_y) % size
        hop = -np.exp(2j * np.pi * phi * x) if step_y else -np.ones(n, dtype=complex)
        rows += [target, np.arange(n)]
        cols += [np.arange(n), target]
        values += [hop, hop.conj()]
        dx += [np.full(n, step_x), np.full(n, -step_x)]
        dy += [np.full(n, step_y), np.full(n, -step_y)]
    r, c, v = (np.concatenate(a) for a in (rows, cols, values))
    # <i|v_d|j> = i H_ij (r_j - r_i)_d, and (dx, dy) = r_i - r_j here.
    hamiltonian = sp.csr_matrix((v, (r, c)), shape=(n, n))
    vx = sp.csr_matrix((-1j * v * np.concatenate(dx), (r, c)), shape=(n, n))
    vy = sp.csr_matrix((-1j * v * np.concatenate(dy), (r, c)), shape=(n, n))
    return hamiltonian, vx, vy


def small_matrix(n: int = 20) -> np.ndarray:
    return -np.eye(n, k=1) - np.eye(n, k=-1) + np.diag(0.1 * np.arange(n) / n)


def builder_disk(radius: float = 3.5, norbs: int = 1) -> meso.System:
    lat = meso.lattice.square(norbs=norbs)
    syst = meso.Builder()
    onsite = 0.3 * np.eye(norbs) if norbs > 1 else 0.3
    hop = -np.eye(norbs) if norbs > 1 else -1
    syst[lat.shape(lambda pos: np.hypot(*pos) < radius, (0, 0))] = onsite
    syst[lat.neighbors()] = hop
    return syst.finalized()


# --------------------------------------------------------------------------------------
# densities of states against closed forms
# --------------------------------------------------------------------------------------


def test_chain_dos_matches_closed_form():
    # On a ring every site is equivalent, so one site's local vector gives the exact
    # density of states per site: 1 / (pi sqrt(4 t^2 - E^2)).
    t = 1.0
    hamiltonian = ring(2000, t)
    rho = kpm.SpectralDensity(
        hamiltonian,
        vector_factory=kpm.LocalVectors(hamiltonian, where=[0]),
        num_vectors=None,
        num_moments=400,
    )
    energies = np.linspace(-1.8, 1.8, 37) * t
    exact = 1 / (np.pi * np.sqrt(4 * t**2 - energies**2))
    np.testing.assert_allclose(rho(energies), exact, rtol=2e-3)
    # The sampled densities agree with the evaluation at the same energies.
    np.testing.assert_allclose(rho(rho.energies), rho.densities, rtol=1e-8, atol=1e-10)


def test_square_lattice_dos_matches_elliptic_integral():
    # rho(E) = K(1 - E^2 / 16) / (2 pi^2) per site (t = 1), K the complete elliptic
    # integral of parameter m; the Jackson kernel resolves it away from the log
    # singularity at E = 0 to better than 1 %.
    hamiltonian = square_torus(200)
    rho = kpm.SpectralDensity(
        hamiltonian,
        vector_factory=kpm.LocalVectors(hamiltonian, where=[0]),
        num_vectors=None,
        num_moments=150,
        bounds=(-4.0, 4.0),
    )
    energies = np.concatenate([np.linspace(-3.5, -0.5, 7), np.linspace(0.5, 3.5, 7)])
    exact = ellipk(1 - (energies / 4) ** 2) / (2 * np.pi**2)
    np.testing.assert_allclose(rho(energies), exact, rtol=1e-2)


def test_dos_integrates_to_number_of_orbitals():
    syst = builder_disk(norbs=2)
    rho = kpm.SpectralDensity(syst, num_moments=60, num_vectors=3, rng=2)
    assert syst.num_orbitals == 2 * len(syst.sites)
    assert rho.integrate() == pytest.approx(syst.num_orbitals, rel=1e-12)
    # Simpson's rule on the sampled densities agrees with the Gauss-Chebyshev quadrature.
    simpson = np.trapezoid(rho.densities, rho.energies)
    assert simpson == pytest.approx(syst.num_orbitals, rel=5e-3)
    # With the occupation at a chemical potential in a gap, the integral counts the
    # states below it (exact trace with local vectors; SSH chain with gap 2|t1 - t2|).
    n = 60
    t1, t2 = 1.0, 0.4
    hops = np.where(np.arange(n - 1) % 2 == 0, -t1, -t2)
    ssh = np.diag(hops, 1) + np.diag(hops, -1)
    exact_count = np.sum(np.linalg.eigvalsh(ssh) < 0.0)
    rho = kpm.SpectralDensity(
        ssh, vector_factory=kpm.LocalVectors(ssh), num_vectors=None, num_moments=200
    )
    # mean=True: the integral per local vector, a trace over n orbitals divided by n.
    count = n * rho.integrate(lambda e: kpm.fermi_distribution(e, 0.0, 0.0))
    assert exact_count == n // 2
    assert count == pytest.approx(exact_count, abs=0.05)


def test_system_and_matrix_inputs_agree_and_density_operator_sums_to_dos():
    syst = builder_disk()
    matrix = syst.hamiltonian_submatrix(sparse=True)
    common = dict(num_moments=40, num_vectors=4, rng=5)
    from_system = kpm.SpectralDensity(syst, **common)
    from_matrix = kpm.SpectralDensity(matrix, **common)
    np.testing.assert_allclose(from_system.densities, from_matrix.densities, atol=1e-12)
    local = kpm.SpectralDensity(syst, operator=meso.operator.Density(syst), **common)
    assert local.densities.shape == (80, len(syst.sites))
    np.testing.assert_allclose(local.densities.sum(axis=1), from_system.densities, atol=1e-10)
    # The same densities from a user function and a matrix operator.
    identity = np.eye(matrix.shape[0])
    by_function = kpm.SpectralDensity(syst, operator=lambda bra, ket: np.vdot(bra, ket), **common)
    by_matrix = kpm.SpectralDensity(syst, operator=identity, **common)
    np.testing.assert_allclose(by_function.densities, from_system.densities, atol=1e-9)
    np.testing.assert_allclose(by_matrix.densities, from_system.densities, atol=1e-9)


# --------------------------------------------------------------------------------------
# Kubo-Bastin conductivity
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hofstadter():
    size, phi = 30, 0.1
    hamiltonian, vx, vy = hofstadter_torus(size, phi)
    eigenvalues = np.linalg.eigvalsh(hamiltonian.toarray())
    return size, phi, hamiltonian, vx, vy, eigenvalues


def gap_centres(eigenvalues: np.ndarray, count: int) -> np.ndarray:
    """Centres of the `count` lowest gaps wider than 0.5."""
    steps = np.diff(eigenvalues)
    wide = np.flatnonzero(steps > 0.5)[:count]
    return (eigenvalues[wide] + eigenvalues[wide + 1]) / 2


def test_hall_conductivity_is_quantized_in_the_gaps(hofstadter):
    # Hofstadter bands at flux 1/10: the r-th gap from the bottom carries the Hall
    # conductance r e^2/h (TKNN), sign set by the field; per unit area on the torus.
    # Six random vectors on 900 sites: a stochastic error of a few percent.
    size, phi, hamiltonian, vx, vy, eigenvalues = hofstadter
    area = size * size
    mus = gap_centres(eigenvalues, 2)
    common = dict(num_moments=150, num_vectors=6, rng=1, bounds=(-4.0, 4.0))
    sigma_xy = kpm.conductivity(hamiltonian, vx, vy, **common)(mus) / area
    orders = np.arange(1, 3)
    sign = np.sign(sigma_xy[0].real)
    np.testing.assert_allclose(sigma_xy.real, sign * orders, atol=0.2)
    assert np.all(np.abs(sigma_xy.imag) < 0.2)
    # Between the gaps, inside the lowest band, it is not quantized.
    inside_band = eigenvalues[area // 20]
    assert abs(abs(kpm.conductivity(hamiltonian, vx, vy, **common)(inside_band)) / area - 1) > 0.2
    # Reversing the field reverses the Hall conductivity (Onsager).
    reversed_field, vx_r, vy_r = hofstadter_torus(size, -phi)
    sigma_reversed = kpm.conductivity(reversed_field, vx_r, vy_r, **common)(mus) / area
    np.testing.assert_allclose(sigma_reversed.real, -sign * orders, atol=0.2)


def test_hall_conductivity_with_disorder_stays_on_the_plateau(hofstadter):
    size, _, hamiltonian, vx, vy, eigenvalues = hofstadter
    disorder = np.random.default_rng(3).uniform(-0.3, 0.3, size * size)
    disordered = (hamiltonian + sp.diags(disorder)).tocsr()
    mu = gap_centres(eigenvalues, 1)[0]
    sigma = kpm.conductivity(
        disordered, vx, vy, num_moments=100, num_vectors=6, rng=1, bounds=(-4.5, 4.5)
    )
    assert abs(abs(sigma(mu).real) / (size * size) - 1) < 0.15


def test_conductivity_of_a_system_matches_the_matrix_with_positions():
    syst = builder_disk()
    matrix = syst.hamiltonian_submatrix(sparse=True)
    common = dict(num_moments=16, num_vectors=3, rng=4)
    from_system = kpm.conductivity(syst, alpha="x", beta="y", **common)
    from_matrix = kpm.conductivity(matrix, "x", "y", positions=syst.pos, **common)
    assert from_system(0.1, 0.05) == pytest.approx(from_matrix(0.1, 0.05), abs=1e-10)
    # Velocity operators given as matrices need no positions.
    vx = kpm._velocity(matrix, None, "x", syst.pos)
    vy = kpm._velocity(matrix, None, "y", syst.pos)
    given = kpm.conductivity(matrix, vx, vy, **common)
    assert given(0.1, 0.05) == pytest.approx(from_matrix(0.1, 0.05), abs=1e-10)
    # A vector of chemical potentials gives the values one by one.
    mus = np.array([-1.0, 0.1])
    np.testing.assert_allclose(
        from_system(mus, 0.05), [from_system(m, 0.05) for m in mus], atol=1e-12
    )


def test_conductivity_of_a_system_builds_its_hamiltonian_once(monkeypatch):
    syst = builder_disk()
    calls = []
    original = type(syst).hamiltonian_submatrix

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    common = dict(num_moments=10, num_vectors=2, rng=4)
    before = kpm.conductivity(syst, "x", "y", **common)(0.1, 0.05)
    monkeypatch.setattr(type(syst), "hamiltonian_submatrix", counting)
    sigma = kpm.conductivity(syst, "x", "y", **common)
    assert len(calls) == 1  # one matrix for both velocities and the expansion
    assert sigma(0.1, 0.05) == before


def test_conductivity_of_a_real_dense_matrix_equals_its_complex_copy():
    chain = small_matrix()
    positions = np.arange(20.0)[:, None]
    common = dict(positions=positions, num_moments=12, num_vectors=2, rng=0)
    real = kpm.conductivity(chain, "x", "x", **common)
    complex_copy = kpm.conductivity(chain.astype(complex), "x", "x", **common)
    assert real(0.1, 0.1) == pytest.approx(complex_copy(0.1, 0.1), rel=1e-12)


def test_correlator_add_moments_equals_a_fresh_expansion():
    syst = builder_disk()
    grown = kpm.conductivity(
        syst, "x", "y", num_moments=10, num_vectors=3, rng=0, accumulate_vectors=True
    )
    grown.add_moments(15)
    fresh = kpm.conductivity(syst, "x", "y", num_moments=25, num_vectors=3, rng=0)
    assert grown.num_moments == 25
    np.testing.assert_allclose(grown.moments_matrix, fresh.moments_matrix, atol=1e-10)
    more = kpm.conductivity(syst, "x", "y", num_moments=10, num_vectors=2, rng=0)
    more.add_vectors(1)
    three = kpm.conductivity(syst, "x", "y", num_moments=10, num_vectors=3, rng=0)
    np.testing.assert_allclose(more.moments_matrix, three.moments_matrix, atol=1e-12)
    with pytest.raises(ValueError, match="accumulate_vectors"):
        three.add_moments(5)


# --------------------------------------------------------------------------------------
# reproducibility and Kwant's numbers
# --------------------------------------------------------------------------------------

# Printed by Kwant 1.5.0 (kwant.kpm) for the inputs of the two tests below.
KWANT_DENSITIES = [0.6896400348316405, 5.759377070172288, 3.253761589994508, 0.7270908003480947]
KWANT_RHO_AT_0_3 = 3.36262704767178
KWANT_X_DENSITIES = [
    6.7089177528840205 + 0.01073711776950296j,
    57.20077153524256 + 1.1194714946618503j,
    25.91728124180789 + 0.1997774712329802j,
    7.150705642887248 - 0.15776926362532848j,
]
KWANT_HALL = 17.387333452347956 + 3.7419806946744965j
KWANT_SHARED_RNG_XX = 34.038391184873326 - 3.847079615632621j
KWANT_SHARED_RNG_NEXT = 0.9851367976958045


def test_same_seed_gives_kwants_numbers():
    chain = small_matrix()
    common = dict(bounds=(-2.2, 2.3), num_moments=16, num_vectors=3, rng=7)
    rho = kpm.SpectralDensity(chain, **common)
    np.testing.assert_allclose(rho.densities[[0, 5, 16, 31]], KWANT_DENSITIES, rtol=1e-10)
    assert rho(0.3) == pytest.approx(KWANT_RHO_AT_0_3, rel=1e-10)
    position = np.diag(np.arange(20.0))
    rho_x = kpm.SpectralDensity(chain, operator=position, **common)
    np.testing.assert_allclose(rho_x.densities[[0, 5, 16, 31]], KWANT_X_DENSITIES, rtol=1e-10)


def test_same_seed_gives_kwants_hall_correlator():
    size = 5
    hamiltonian = np.zeros((size * size, size * size), complex)
    positions = np.array([(i, j) for i in range(size) for j in range(size)], float)
    for i in range(size):
        for j in range(size):
            if i + 1 < size:
                hamiltonian[(i + 1) * size + j, i * size + j] = -1
            if j + 1 < size:
                hamiltonian[i * size + j + 1, i * size + j] = -np.exp(2j * np.pi * 0.1 * i)
    hamiltonian = hamiltonian + hamiltonian.conj().T
    sigma = kpm.conductivity(
        hamiltonian, "x", "y", positions=positions, bounds=(-4.1, 4.1),
        num_moments=12, num_vectors=2, rng=3,
    )  # fmt: skip
    assert sigma(mu=0.2, temperature=0.05) == pytest.approx(KWANT_HALL, rel=1e-10)


def test_shared_generator_is_used_as_kwant_uses_it():
    # A RandomState shared with the caller: after add_vectors the correlator has drawn the
    # same numbers as Kwant's (which draws a second start vector), so both the result and
    # the generator's next number agree with Kwant's.
    chain = small_matrix().astype(complex)
    rng = np.random.RandomState(5)
    sigma = kpm.conductivity(
        chain, "x", "x", positions=np.arange(20.0)[:, None], bounds=(-2.2, 2.3),
        num_moments=10, num_vectors=2, rng=rng,
    )  # fmt: skip
    sigma.add_vectors(1)
    assert sigma(mu=0.1, temperature=0.1) == pytest.approx(KWANT_SHARED_RNG_XX, rel=1e-10)
    assert rng.random_sample() == KWANT_SHARED_RNG_NEXT


def test_rng_reproducibility():
    chain = small_matrix(30)
    first = kpm.SpectralDensity(chain, num_moments=20, rng=11)
    again = kpm.SpectralDensity(chain, num_moments=20, rng=11)
    other = kpm.SpectralDensity(chain, num_moments=20, rng=12)
    state = kpm.SpectralDensity(chain, num_moments=20, rng=np.random.RandomState(11))
    np.testing.assert_array_equal(first.densities, again.densities)
    np.testing.assert_array_equal(first.densities, state.densities)
    assert not np.array_equal(first.densities, other.densities)
    gen_a = kpm.SpectralDensity(chain, num_moments=20, rng=np.random.default_rng(11))
    gen_b = kpm.SpectralDensity(chain, num_moments=20, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(gen_a.densities, gen_b.densities)
    # RandomVectors draws the same phases as the default vectors after the start vector.
    rng = np.random.RandomState(11)
    rng.random_sample(30)  # the Lanczos start vector
    vectors = list(zip(range(10), kpm.RandomVectors(chain, rng=rng)))
    explicit = kpm.SpectralDensity(
        chain, num_moments=20, rng=11, vector_factory=[v for _, v in vectors]
    )
    np.testing.assert_array_equal(explicit.densities, first.densities)


@pytest.mark.parametrize("field", [0.0, 0.2])
@pytest.mark.parametrize("operator", [None, "matrix"])
def test_results_do_not_depend_on_batching(operator, field, monkeypatch):
    # field != 0: a complex Hamiltonian (the real one takes a real sparse product).
    chain = small_matrix(25) + 1j * field * (np.eye(25, k=1) - np.eye(25, k=-1))
    op = None if operator is None else np.diag(np.linspace(0, 1, 25))
    common = dict(operator=op, num_moments=30, rng=3)
    together = kpm.SpectralDensity(chain, num_vectors=4, **common)
    one_by_one = kpm.SpectralDensity(chain, num_vectors=1, **common)
    for _ in range(3):
        one_by_one.add_vectors(1)
    np.testing.assert_array_equal(together._moments_list, one_by_one._moments_list)
    np.testing.assert_array_equal(together.densities, one_by_one.densities)
    # Growing the expansion gives the same moments, bit for bit, as a longer one (odd and
    # even numbers of moments are computed differently without an operator).
    for extra in (1, 6):
        grown = kpm.SpectralDensity(chain, num_vectors=4, **common)
        grown.add_moments(extra)
        longer = kpm.SpectralDensity(chain, num_vectors=4, **{**common, "num_moments": 30 + extra})
        np.testing.assert_array_equal(grown._moments_list, longer._moments_list)
    # Without kept vectors, the work is split into blocks of one vector: same numbers.
    blocks = []
    original = kpm._Chebyshev.__init__

    def counting(self, doubled, start, **options):
        blocks.append(start.shape[1])
        original(self, doubled, start, **options)

    monkeypatch.setattr(kpm, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(kpm._Chebyshev, "__init__", counting)
    split = kpm.SpectralDensity(chain, num_vectors=4, accumulate_vectors=False, **common)
    assert blocks == [1, 1, 1, 1]
    np.testing.assert_array_equal(split.densities, together.densities)


def open_square_lattice(size: int, disorder: float = 1.0) -> sp.csr_matrix:
    """A size x size square lattice with open edges (hopping -1, random onsite): real."""
    n = size * size
    along = -np.ones(n - 1)
    along[size - 1 :: size] = 0.0  # no bond from the end of a row to the next row's start
    onsite = np.random.default_rng(0).uniform(-disorder / 2, disorder / 2, n)
    across = -np.ones(n - size)
    return sp.diags([along, along, across, across, onsite], [1, -1, size, -size, 0]).tocsr()


@pytest.mark.parametrize("kind", ["real", "complex"])
def test_threads_share_the_work_without_changing_the_numbers(kind, monkeypatch):
    # A real Hamiltonian with numba: the fused kernel's passes split the rows between
    # threads (moments equal to rounding: the overlaps are summed in parts). A complex one:
    # blocks of vectors go to threads, each vector's moments the same numbers as on one
    # thread. A correlator's averages are sums over the blocks, equal to rounding.
    matrix = open_square_lattice(16) if kind == "real" else hofstadter_torus(12, 0.3)[0]
    common = dict(num_moments=40, num_vectors=7, rng=5, bounds=(-4.5, 4.5))
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    alone = kpm.SpectralDensity(matrix, **common)
    pair = hofstadter_torus(12, 0.1)
    sigma_alone = kpm.conductivity(pair[0], pair[1], pair[2], **common)(0.3)
    ran = []
    original_blocks, original_rows = kpm._in_threads, kpm._Chebyshev._row_edges

    def blocks(tasks, threads):
        ran.append(("blocks", threads))
        return original_blocks(tasks, threads)

    def rows(self, n_rows, width):
        edges = original_rows(self, n_rows, width)
        ran.append(("rows", len(edges) - 1))
        return edges

    monkeypatch.setattr(kpm, "_in_threads", blocks)
    monkeypatch.setattr(kpm._Chebyshev, "_row_edges", rows)
    monkeypatch.setattr(kpm, "_MIN_THREADED_ENTRIES", 1)
    monkeypatch.setenv("MESOSCOPIC_THREADS", "3")
    shared = kpm.SpectralDensity(matrix, **common)
    shared.add_vectors(2)
    alone.add_vectors(2)
    if kind == "real" and kpm._fused_kernels() is not None:
        assert ("rows", 3) in ran
        np.testing.assert_allclose(
            shared._moments_list, alone._moments_list, rtol=1e-13, atol=1e-12
        )
    else:
        assert ("blocks", 3) in ran
        np.testing.assert_array_equal(shared._moments_list, alone._moments_list)
    np.testing.assert_allclose(shared.densities, alone.densities, rtol=1e-12, atol=1e-12)
    sigma_shared = kpm.conductivity(pair[0], pair[1], pair[2], **common)(0.3)
    np.testing.assert_allclose(sigma_shared, sigma_alone, rtol=1e-12)


def test_real_hamiltonian_shortcut_matches_the_complex_product(monkeypatch):
    chain = small_matrix(25)
    fast = kpm.SpectralDensity(chain, num_moments=30, num_vectors=3, rng=2)
    assert fast._state is not None and fast._state.real
    monkeypatch.setattr(kpm, "_doubled_hamiltonian", lambda h: sp.csr_matrix(2.0 * h))
    complex_product = kpm.SpectralDensity(chain, num_moments=30, num_vectors=3, rng=2)
    assert complex_product._state is not None and not complex_product._state.real
    np.testing.assert_allclose(fast.densities, complex_product.densities, rtol=1e-13)


def test_mean_false_keeps_one_density_per_vector():
    chain = small_matrix()
    each = kpm.SpectralDensity(chain, num_moments=20, num_vectors=3, rng=1, mean=False)
    mean = kpm.SpectralDensity(chain, num_moments=20, num_vectors=3, rng=1)
    assert each.densities.shape == (40, 3)
    np.testing.assert_allclose(each.densities.mean(axis=1), mean.densities, atol=1e-12)
    np.testing.assert_allclose(each.integrate(), [20.0] * 3, rtol=1e-12)
    # A constant weight may be returned as a scalar.
    assert mean.integrate(lambda e: 0.5) == pytest.approx(10.0, rel=1e-12)
    syst = builder_disk()
    common = dict(num_moments=12, num_vectors=3, rng=1)
    sigma_each = kpm.conductivity(syst, "x", "y", mean=False, **common)
    sigma_mean = kpm.conductivity(syst, "x", "y", **common)
    assert sigma_each(0.2, 0.1).shape == (3,)
    assert sigma_each([0.2, 0.3], 0.1).shape == (2, 3)
    assert sigma_each(0.2, 0.1).mean() == pytest.approx(sigma_mean(0.2, 0.1), abs=1e-10)


def test_kernels_and_energy_resolution():
    chain = small_matrix()
    jackson = kpm.SpectralDensity(chain, num_moments=50, rng=1)
    lorentz = kpm.SpectralDensity(chain, num_moments=50, rng=1, kernel=kpm.lorentz_kernel)
    # Both kernels keep the zeroth moment: the same integral.
    assert lorentz.integrate() == pytest.approx(jackson.integrate(), rel=1e-12)
    assert not np.allclose(lorentz.densities, jackson.densities)
    by_resolution = kpm.SpectralDensity(chain, energy_resolution=0.1, rng=1)
    assert by_resolution.num_moments == int(np.ceil(1.6 * by_resolution._a / 0.1))
    by_resolution.add_moments(energy_resolution=0.05)
    assert by_resolution.num_moments == int(np.ceil(1.6 * by_resolution._a / 0.05))
    assert np.max(np.diff(by_resolution.energies)) < 0.05
    # Outside the bounds there are no states.
    lower, upper = jackson.bounds
    assert jackson(np.array([lower - 1, upper + 1])).tolist() == [0.0, 0.0]


def test_fermi_distribution():
    energies = np.array([-1e4, -0.1, 0.0, 0.1, 1e4])
    values = kpm.fermi_distribution(energies, 0.0, 0.05)
    expected = 1 / (1 + np.exp(np.clip(energies / 0.05, -700, 700)))
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-300)
    assert values[2] == 0.5
    np.testing.assert_array_equal(kpm.fermi_distribution(energies, 0.0, 0.0), [1, 1, 0, 0, 0])


def test_where_selects_the_same_orbitals_for_sites_indices_and_functions():
    syst = builder_disk()
    central = [site for site in syst.sites if np.hypot(*site.pos) < 1.2]
    indices = [syst.id_by_site[site] for site in central]
    by_sites = kpm.LocalVectors(syst, where=central)
    by_function = kpm.LocalVectors(syst, where=lambda site: np.hypot(*site.pos) < 1.2)
    assert len(by_sites) == len(by_function) == 5
    np.testing.assert_array_equal(by_sites.orbs, by_function.orbs)
    np.testing.assert_array_equal(np.sort(by_sites.orbs), np.sort(indices))
    vector = next(kpm.RandomVectors(syst, where=central, rng=0))
    assert np.count_nonzero(vector) == 5
    np.testing.assert_allclose(np.abs(vector[indices]), 1.0)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors():
    chain = small_matrix()
    with pytest.raises(ValueError, match="finite system, a matrix"):
        kpm.SpectralDensity("not a hamiltonian")
    with pytest.raises(ValueError, match="square"):
        kpm.SpectralDensity(np.ones((3, 4)))
    with pytest.raises(ValueError, match="not Hermitian"):
        kpm.SpectralDensity(np.triu(np.ones((5, 5))))
    with pytest.raises(ValueError, match="single eigenvalue"):
        kpm.SpectralDensity(np.eye(6))
    for name in ("num_moments", "num_vectors"):
        for value in (0, -3, 2.5):
            with pytest.raises(ValueError, match=f"{name} must be a positive integer.*{value}"):
                kpm.SpectralDensity(chain, **{name: value})
    with pytest.raises(TypeError, match="num_moments or energy_resolution"):
        kpm.SpectralDensity(chain, num_moments=10, energy_resolution=0.1)
    with pytest.raises(ValueError, match="eps"):
        kpm.SpectralDensity(chain, eps=2.5)
    with pytest.raises(ValueError, match="lower < upper"):
        kpm.SpectralDensity(chain, bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"not inside bounds"):
        kpm.SpectralDensity(chain, bounds=(-1.0, 1.0), num_moments=50)
    with pytest.raises(ValueError, match="operator must be"):
        kpm.SpectralDensity(chain, operator="density")
    with pytest.raises(ValueError, match=r"shape \(5, 5\)"):
        kpm.SpectralDensity(chain, operator=np.eye(5))
    with pytest.raises(TypeError, match="vector_factory must be an iterable"):
        kpm.SpectralDensity(chain, vector_factory=3)
    with pytest.raises(ValueError, match=r"vector 0 of vector_factory has shape \(3,\)"):
        kpm.SpectralDensity(chain, vector_factory=[np.ones(3)], num_vectors=None)
    with pytest.raises(ValueError, match="only 2"):
        kpm.SpectralDensity(chain, vector_factory=kpm.LocalVectors(chain, [0, 1]), num_vectors=3)
    with pytest.raises(ValueError, match="rng must be"):
        kpm.SpectralDensity(chain, rng="seed")
    with pytest.raises(ValueError, match="where holds orbital 99"):
        kpm.LocalVectors(chain, where=[99])
    rho = kpm.SpectralDensity(chain, num_moments=20, accumulate_vectors=False)
    with pytest.raises(ValueError, match="accumulate_vectors"):
        rho.add_moments(5)
    with pytest.raises(TypeError, match="either"):
        rho.add_moments()
    with pytest.raises(ValueError, match="already"):
        rho.add_moments(energy_resolution=10.0)
    with pytest.raises(ValueError, match="num_vectors must be a positive integer"):
        rho.add_vectors(0)
    with pytest.raises(TypeError, match="real"):
        rho(1j)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        kpm.fermi_distribution(0.0, 0.0, -1.0)


def test_conductivity_errors():
    chain = small_matrix()
    positions = np.arange(20.0)[:, None]
    with pytest.raises(ValueError, match="needs positions"):
        kpm.conductivity(chain, "x", "x")
    with pytest.raises(ValueError, match="'y' does not exist in 1 dimension"):
        kpm.conductivity(chain, "x", "y", positions=positions)
    with pytest.raises(ValueError, match="one of 'x', 'y', 'z'"):
        kpm.conductivity(chain, "w", "x", positions=positions)
    with pytest.raises(ValueError, match=r"shape \(20, dim\)"):
        kpm.conductivity(chain, "x", "x", positions=np.zeros((3, 1)))
    with pytest.raises(TypeError, match="operators must be"):
        kpm.Correlator(chain, operator1="x")
    lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    lat = meso.lattice.chain(norbs=1)
    lead[lat(0)] = 0
    lead[lat.neighbors()] = -1
    with pytest.raises(ValueError, match="lead"):
        kpm.SpectralDensity(lead.finalized())


def test_public_sparse_product_fallback_gives_the_same_densities(monkeypatch):
    # Without SciPy's private accumulating kernel the public product is used: same numbers.
    chain = small_matrix(25) + 0.2j * (np.eye(25, k=1) - np.eye(25, k=-1))
    for hamiltonian in (chain, chain.real):
        fast = kpm.SpectralDensity(hamiltonian, num_moments=30, num_vectors=3, rng=2)
        with monkeypatch.context() as patch:
            patch.setattr(kpm, "_csr_matvecs", None)
            patch.setattr(kpm, "_FUSED_KERNEL", False)
            public = kpm.SpectralDensity(hamiltonian, num_moments=30, num_vectors=3, rng=2)
        np.testing.assert_allclose(public.densities, fast.densities, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rng", [7, "generator"])
def test_random_vectors_drawn_as_one_block_equal_the_vectors_one_by_one(rng, monkeypatch):
    # The default vectors are drawn as a block; vector j is the j-th one next() gives, also
    # on a selection of orbitals, and the densities equal those of the explicit list.
    def seeded():
        return 7 if rng == 7 else np.random.default_rng(7)

    chain = small_matrix(30)
    where = [1, 4, 5, 17]
    for selection in (None, where):
        one_by_one = kpm.RandomVectors(chain, where=selection, rng=seeded())
        vectors = np.column_stack([next(one_by_one) for _ in range(5)])
        block = kpm.RandomVectors(chain, where=selection, rng=seeded()).block(5)
        np.testing.assert_array_equal(block, vectors)
        np.testing.assert_allclose(np.abs(vectors[where if selection else slice(None)]), 1.0)
        assert np.abs(vectors).sum() == pytest.approx(5 * (4 if selection else 30))
        angles = np.angle(vectors[where if selection else slice(None)])
        assert np.ptp(angles) > 3  # phases all around the circle
    blocks = []
    original = kpm._RandomPhaseVectors.block

    def counting(self, count):
        blocks.append(count)
        return original(self, count)

    monkeypatch.setattr(kpm._RandomPhaseVectors, "block", counting)
    drawn = kpm.SpectralDensity(chain, num_moments=20, num_vectors=4, rng=seeded())
    assert blocks == [4]
    generator = kpm._ensure_rng(seeded())
    generator.random_sample(30) if rng == 7 else generator.random(30)  # Lanczos start
    listed = [v.copy() for _, v in zip(range(4), kpm.RandomVectors(chain, rng=generator))]
    explicit = kpm.SpectralDensity(
        chain, num_moments=20, num_vectors=4, rng=seeded(), vector_factory=listed
    )
    np.testing.assert_array_equal(drawn.densities, explicit.densities)


def test_velocity_keeps_only_the_bonds_along_the_direction():
    size = 6
    hamiltonian = hofstadter_torus(size, 0.1)[0]
    # An open square lattice: positions exist, the velocity is i [H, x] exactly.
    x, y = np.divmod(np.arange(size * size), size)
    open_lattice = hamiltonian.toarray()
    open_lattice[np.abs(x[:, None] - x[None, :]) > 1] = 0
    open_lattice[np.abs(y[:, None] - y[None, :]) > 1] = 0
    open_lattice += np.diag(np.linspace(-0.5, 0.5, size * size))
    positions = np.column_stack([x, y]).astype(float)
    for direction, column in (("x", 0), ("y", 1)):
        velocity = kpm._velocity(sp.csr_matrix(open_lattice), None, direction, positions)
        r = np.diag(positions[:, column])
        np.testing.assert_allclose(
            velocity.toarray(), 1j * (open_lattice @ r - r @ open_lattice), atol=1e-14
        )
        # No stored zeros: only the bonds with a component along the direction.
        rows, cols = np.nonzero(open_lattice)
        assert velocity.nnz == np.count_nonzero(positions[rows, column] != positions[cols, column])
        assert np.all(velocity.data != 0)


@pytest.mark.parametrize("field", [0.0, 0.2])
def test_matrix_velocity_applied_in_place_equals_the_function_operator(field):
    # A matrix O_b goes through the accumulating kernel with the signs folded in; the same
    # operator as a function of a vector takes the generic path: the same moments.
    hamiltonian, vx, vy = hofstadter_torus(6, field)
    common = dict(num_moments=20, num_vectors=3, rng=2, bounds=(-4.1, 4.1))
    by_matrix = kpm.Correlator(hamiltonian, vx, vy, **common)
    assert by_matrix._operator2_matrices is not None
    by_function = kpm.Correlator(hamiltonian, vx, lambda v: vy @ v, **common)
    assert by_function._operator2_matrices is None
    np.testing.assert_allclose(by_matrix.moments_matrix, by_function.moments_matrix, atol=1e-12)
    # A real matrix O_b (acting on the real and imaginary parts) and its complex copy; its
    # stored zero (the first entry) is not kept.
    position = sp.csr_matrix((np.arange(36.0), np.arange(36), np.arange(37)), shape=(36, 36))
    assert position.nnz == 36
    real = kpm.Correlator(hamiltonian, vx, position, **common)
    complex_copy = kpm.Correlator(hamiltonian, vx, position.astype(complex), **common)
    assert not np.iscomplexobj(real._operator2_matrices[0].data)
    assert real._operator2_matrices[0].nnz == real._operator2_matrices[1].nnz == 35
    np.testing.assert_allclose(real.moments_matrix, complex_copy.moments_matrix, atol=1e-12)


@pytest.mark.parametrize("field", [0.0, 0.3])
def test_chebyshev_blocks_follow_the_three_term_recursion(field):
    # The blocks are kept in place with signs s_n = +, +, -, -, ...; T_n(H) V comes back
    # as the plain recursion gives it, for a real and a complex Hamiltonian.
    size = 12
    h = small_matrix(size) + 1j * field * (np.eye(size, k=1) - np.eye(size, k=-1))
    h = h / 2.5
    start = np.exp(2j * np.pi * np.random.default_rng(0).random((size, 3)))
    state = kpm._Chebyshev(kpm._doubled_hamiltonian(sp.csr_matrix(h)), start)
    assert state.real == (field == 0)
    previous, current = start, h @ start
    for n in range(1, 15):
        np.testing.assert_allclose(state.vector(n), current, atol=1e-13)
        np.testing.assert_array_equal(state.sign(n) * state.signed(n), state.vector(n))
        previous, current = current, 2 * h @ current - previous
    assert [kpm._Chebyshev.sign(n) for n in range(8)] == [1, 1, -1, -1, 1, 1, -1, -1]
    np.testing.assert_array_equal(state.vector(0), start)  # the steps never overwrite V


# --------------------------------------------------------------------------------------
# the fused kernel (numba) against SciPy's
# --------------------------------------------------------------------------------------

needs_numba = pytest.mark.skipif(
    kpm._fused_kernels() is None, reason="the fused kernel needs numba (mesoscopic[fast])"
)


def random_hamiltonian(kind: str, seed: int) -> sp.csr_matrix:
    """A random sparse Hermitian matrix: a banded lattice or no band at all, real or not."""
    rng = np.random.default_rng(seed)
    if kind.startswith("lattice"):  # 8 x 8 square lattice, random hoppings: lag 8
        x, y = np.divmod(np.arange(64), 8)
        near = np.abs(x[:, None] - x) + np.abs(y[:, None] - y) == 1
        upper = np.triu(near * rng.uniform(-1.5, -0.5, (64, 64)))
    else:  # a random pattern: entries far from the diagonal
        upper = np.triu(sp.random(70, 70, density=0.08, random_state=rng).toarray())
    if kind.endswith("complex"):
        upper = upper * np.exp(2j * np.pi * rng.random(upper.shape))
    matrix = upper + upper.conj().T + np.diag(rng.uniform(-1, 1, len(upper)))
    return sp.csr_matrix(matrix)


def both_kernels(monkeypatch, make):
    """``make()`` with the fused kernel and with SciPy's."""
    with monkeypatch.context() as patch:
        patch.setattr(kpm, "_FUSED_KERNEL", True)
        fused = make()
    with monkeypatch.context() as patch:
        patch.setattr(kpm, "_FUSED_KERNEL", False)
        scipy_path = make()
    return fused, scipy_path


@needs_numba
@pytest.mark.parametrize("kind", ["lattice", "random", "lattice complex", "random complex"])
@pytest.mark.parametrize("num_moments", [2, 3, 8, 31])
def test_fused_kernel_gives_the_moments_of_scipys_kernel(kind, num_moments, monkeypatch):
    hamiltonian = random_hamiltonian(kind, seed=num_moments)
    size = hamiltonian.shape[0]
    phases = np.exp(2j * np.pi * np.random.default_rng(5).random((size, 3)))
    common = dict(num_moments=num_moments, num_vectors=3, vector_factory=list(phases.T))
    fused, scipy_path = both_kernels(
        monkeypatch, lambda: kpm.SpectralDensity(hamiltonian, rng=4, **common)
    )
    # The fused kernel takes the real Hamiltonians (complex ones keep SciPy's product).
    assert fused._state.fused == (not kind.endswith("complex"))
    assert not scipy_path._state.fused
    # Moments to 1e-12 of their scale mu_0 (the moments mu_n = 2 <a|a> - mu_0 cancel).
    scale = 1e-12 * size
    np.testing.assert_allclose(fused._moments_list, scipy_path._moments_list, atol=scale)
    # The Chebyshev vectors themselves are the same numbers.
    np.testing.assert_array_equal(fused._state.current, scipy_path._state.current)
    np.testing.assert_array_equal(fused._state.previous, scipy_path._state.previous)
    for grown in (fused, scipy_path):
        grown.add_moments(5)  # continues from either parity of the last moment
    np.testing.assert_allclose(fused._moments_list, scipy_path._moments_list, atol=scale)
    # mu_n = <r|T_n(H)|r>, by the plain recursion on dense matrices.
    rescaled = (hamiltonian.toarray() - fused._b * np.eye(size)) / fused._a
    previous, current = phases, rescaled @ phases
    exact = [np.sum(phases.conj() * previous, axis=0), np.sum(phases.conj() * current, axis=0)]
    for _ in range(num_moments + 3):
        previous, current = current, 2 * rescaled @ current - previous
        exact.append(np.sum(phases.conj() * current, axis=0))
    np.testing.assert_allclose(fused._moments_list, np.real(exact).T, atol=1e-10 * size)


@needs_numba
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("kind", ["lattice", "random"])
def test_fused_steps_equal_scipys_products_bit_for_bit(steps, kind, split):
    from scipy.sparse._sparsetools import csr_matvecs

    from mesoscopic import _kpm_kernels

    matrix = 2 * random_hamiltonian(kind, seed=9).real / 5
    matrix.sort_indices()
    size = matrix.shape[0]
    negated = -matrix.data
    rng = np.random.default_rng(1)
    current, previous = rng.normal(size=(2, size, 6))
    overlaps = np.zeros((2 * steps, 6))
    lag = _kpm_kernels.lag(matrix.indptr, matrix.indices)
    assert lag == (8 if kind == "lattice" else np.max(np.abs(np.subtract(*matrix.nonzero()))))
    blocks = [current.copy(), previous.copy()]
    # The whole rows in one pass, or as threads take them: two row ranges (their step-two
    # rows lag rows inside the edge between them), then step two's rows around the edge.
    edge = size // 2 if split else size
    passes = [(0, edge, 0, edge - lag * split)]
    if split:
        passes += [(edge, size, edge + lag, size), (0, 0, edge - lag, edge + lag)]
    for rows in passes:
        if steps == 1:
            rows = (*rows[:2], *rows[:2])
        _kpm_kernels.chebyshev_steps_with_overlaps(
            kpm._unsigned(matrix.indptr), kpm._unsigned(matrix.indices), matrix.data, negated,
            steps, lag, *blocks, overlaps, np.array(rows, dtype=np.int64),
        )  # fmt: skip
    # The same steps by SciPy's kernel, c_(m+1) = c_(m-1) + M c_m in place, M = +-2 H.
    expected = [current.copy(), previous.copy()]
    for step in range(steps):
        source, target = expected[step], expected[1 - step]
        data = matrix.data if step == 0 else negated
        np.testing.assert_allclose(overlaps[2 * step], np.sum(source * source, axis=0), rtol=1e-13)
        csr_matvecs(size, size, 6, matrix.indptr, matrix.indices, data,
                    source.ravel(), target.ravel())  # fmt: skip
        np.testing.assert_allclose(
            overlaps[2 * step + 1], np.sum(target * source, axis=0), rtol=1e-13
        )
    np.testing.assert_array_equal(blocks[0], expected[0])
    np.testing.assert_array_equal(blocks[1], expected[1])


def test_kernel_choice_from_the_environment(monkeypatch):
    chain = small_matrix()
    monkeypatch.setattr(kpm, "_FUSED_KERNEL", None)
    monkeypatch.setenv("MESOSCOPIC_KPM_KERNEL", "scipy")
    rho = kpm.SpectralDensity(chain, num_moments=10, num_vectors=1, rng=0)
    assert not rho._state.fused
    monkeypatch.setenv("MESOSCOPIC_KPM_KERNEL", "fast")
    with pytest.raises(ValueError, match=r"MESOSCOPIC_KPM_KERNEL='fast'.*'fused'.*'scipy'"):
        kpm.SpectralDensity(chain, num_moments=10, num_vectors=1, rng=0)
    monkeypatch.setenv("MESOSCOPIC_KPM_KERNEL", "fused")
    rho = kpm.SpectralDensity(chain, num_moments=10, num_vectors=1, rng=0)
    assert rho._state.fused == (kpm._fused_kernels() is not None)


def _operator_cases(hamiltonian: sp.csr_matrix) -> dict:
    """Second operators of every kind a correlator takes (a real one for real H too)."""
    size = hamiltonian.shape[0]
    diagonal = sp.diags(np.linspace(-1, 1, size)).tocsr()
    return {
        "none": None,
        "real matrix": diagonal,
        "complex matrix": sp.csr_matrix(1j * (hamiltonian - hamiltonian.T)),
        "function": lambda vector: diagonal @ vector,
    }


@needs_numba
@pytest.mark.parametrize("kind", ["lattice", "random complex"])
@pytest.mark.parametrize("operator", ["none", "real matrix", "complex matrix", "function"])
@pytest.mark.parametrize("mean", [True, False])
def test_compiled_correlator_gives_the_moments_of_scipys_steps(kind, operator, mean, monkeypatch):
    # The compiled expansion (whole series per call, the left one conjugated) against
    # SciPy's step by step: the same numbers, also after add_moments and add_vectors.
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    monkeypatch.setattr(kpm, "_COMPILED_SERIES", True)
    series_calls = []
    original_series = kpm.Correlator._series
    monkeypatch.setattr(
        kpm.Correlator,
        "_series",
        lambda self, *a: series_calls.append(1) or original_series(self, *a),
    )
    hamiltonian = random_hamiltonian(kind, seed=3)
    size = hamiltonian.shape[0]
    phases = np.exp(2j * np.pi * np.random.default_rng(7).random((size, 5)))
    operator2 = _operator_cases(hamiltonian)[operator]
    velocity = sp.csr_matrix(1j * (hamiltonian - hamiltonian.T) / 2)

    def make():
        correlator = kpm.Correlator(
            hamiltonian, velocity, operator2, num_moments=12, mean=mean, bounds=(-6, 6),
            vector_factory=list(phases.T), num_vectors=3, accumulate_vectors=True,
        )  # fmt: skip
        first = correlator.moments_matrix.copy()
        correlator.add_moments(4)
        correlator.add_vectors(2)
        return first, correlator

    (first_c, compiled), (first_s, stepped) = both_kernels(monkeypatch, make)
    assert series_calls  # the first run took the compiled series
    np.testing.assert_array_equal(first_c, first_s)
    np.testing.assert_array_equal(compiled.moments_matrix, stepped.moments_matrix)
    # mu_mn = <O_a r|T_m(H) O_b T_n(H)|r> (O_a^dagger on the left), from dense matrices.
    rescaled = (hamiltonian.toarray() - compiled._b * np.eye(size)) / compiled._a
    dense_b = np.eye(size) if operator2 is None else operator2(np.eye(size)) if callable(
        operator2) else operator2.toarray()  # fmt: skip
    chebyshev = [np.eye(size), rescaled]
    while len(chebyshev) < 16:
        chebyshev.append(2 * rescaled @ chebyshev[-1] - chebyshev[-2])
    vectors = phases
    exact = np.array([
        [np.sum((velocity @ vectors).conj() * (tm @ dense_b @ tn @ vectors), axis=0)
         for tn in chebyshev] for tm in chebyshev
    ])  # fmt: skip
    expected = exact.mean(axis=-1) if mean else np.moveaxis(exact, -1, 0)
    np.testing.assert_allclose(compiled.moments_matrix, expected, atol=1e-11 * size)


@needs_numba
def test_compiled_correlator_in_threads_and_workspace_reuse(monkeypatch):
    # Blocks of vectors in threads (each its own workspace) give the averages of one
    # thread to rounding; a second calculation reuses the workspaces with the same result.
    hamiltonian, vx, vy = hofstadter_torus(12, 0.2)
    common = dict(num_moments=30, num_vectors=6, rng=3, bounds=(-4.5, 4.5))
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    alone = kpm.Correlator(hamiltonian, vx, vy, **common).moments_matrix
    monkeypatch.setenv("MESOSCOPIC_THREADS", "3")
    monkeypatch.setattr(kpm, "_MIN_THREADED_WORK", 1)
    ran = []
    original = kpm._in_threads
    monkeypatch.setattr(
        kpm, "_in_threads", lambda tasks, threads: ran.append(threads) or original(tasks, threads)
    )
    shared = kpm.Correlator(hamiltonian, vx, vy, **common).moments_matrix
    again = kpm.Correlator(hamiltonian, vx, vy, **common).moments_matrix
    assert 3 in ran
    np.testing.assert_allclose(shared, alone, rtol=1e-12, atol=1e-12 * np.abs(alone).max())
    np.testing.assert_array_equal(again, shared)
    # What a thread keeps is bounded: nothing of an expansion larger than the bound.
    monkeypatch.setattr(kpm, "_WORKSPACE_BYTES", 1000)
    monkeypatch.setattr(kpm, "_COMPILED_SERIES", True)
    monkeypatch.setenv("MESOSCOPIC_THREADS", "1")
    small = kpm.Correlator(hamiltonian, vx, vy, **common).moments_matrix
    np.testing.assert_allclose(small, alone, rtol=1e-12, atol=1e-12 * np.abs(alone).max())
    assert sum(a.nbytes for a in kpm._WORKSPACES.arrays.values()) <= 1000


@pytest.mark.parametrize("fused", [True, False])
def test_bounds_far_too_tight_are_refused_also_when_the_vectors_overflow(fused, monkeypatch):
    # With many moments the Chebyshev vectors overflow to inf and NaN, which compare
    # False with any limit: that is an error too, not a NaN density.
    chain = sp.diags([np.ones(49), np.ones(49)], [-1, 1], format="csr")  # spectrum (-2, 2)
    monkeypatch.setattr(kpm, "_FUSED_KERNEL", fused)
    common = dict(num_vectors=2, num_moments=500, rng=1, bounds=(-0.2, 0.2))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow on the way
        with pytest.raises(ValueError, match="vectors grow"):
            kpm.SpectralDensity(chain, **common)
        with pytest.raises(ValueError, match="vectors grow"):
            kpm.Correlator(chain, **common)
