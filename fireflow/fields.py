"""Closed-form rectified-flow velocity fields for testing solvers without a network (ALGORITHM.md section 7).

Independent coupling x_t = (1 - t) X0 + t X1 with X0 the data (t = 0) and X1 the noise side (t = 1);
the exact velocity is v(x, t) = E[X1 - X0 | x_t = x]. Arithmetic in float64.
"""
import math

import torch


class GaussianFlow:
    """Diagonal Gaussian N(mu0, sigma0^2) at t = 0 to N(mu1, sigma1^2) at t = 1, elementwise, any tensor shape.

    s(t) = sqrt((1-t)^2 sigma0^2 + t^2 sigma1^2), c(t) = (1-t) mu0 + t mu1,
    v(x, t) = (mu1 - mu0) + (s'(t) / s(t)) (x - c(t)); exact flow x(b) = c(b) + s(b)/s(a) (x(a) - c(a)).
    """

    def __init__(self, mu0, sigma0, mu1=0.0, sigma1=1.0):
        as64 = lambda v: torch.as_tensor(v, dtype=torch.float64)
        self.mu0, self.sigma0, self.mu1, self.sigma1 = map(as64, (mu0, sigma0, mu1, sigma1))
        if (self.sigma0 <= 0).any() or (self.sigma1 <= 0).any():
            raise ValueError("sigma0 and sigma1 must be > 0 (the first inversion call is at t = 0)")

    def c(self, t):
        return (1 - t) * self.mu0 + t * self.mu1

    def s(self, t):
        return torch.sqrt((1 - t) ** 2 * self.sigma0 ** 2 + t ** 2 * self.sigma1 ** 2)

    def __call__(self, x, t, point=None):
        s = self.s(t)
        ds = (t * self.sigma1 ** 2 - (1 - t) * self.sigma0 ** 2) / s
        v = (self.mu1 - self.mu0) + (ds / s) * (x.to(torch.float64) - self.c(t))
        return v.to(x.dtype)

    def exact(self, x, a, b):
        """Transport x from time a to time b along the exact flow."""
        y = self.c(b) + (self.s(b) / self.s(a)) * (x.to(torch.float64) - self.c(a))
        return y.to(x.dtype)

    def sample(self, shape, t, generator=None):
        """Samples of x_t (t = 0: data, t = 1: noise)."""
        z = torch.randn(shape, generator=generator, dtype=torch.float64)
        return self.c(t) + self.s(t) * z


class GaussianMixtureFlow:
    """Gaussian mixture sum_i a_i N(mu_i, S0_i) at t = 0 to sum_j b_j N(m_j, S1_j) at t = 1 (full covariances).

    For the pair (i, j): c = (1-t) mu_i + t m_j, C = (1-t)^2 S0_i + t^2 S1_j,
    E[X1 - X0 | x, ij] = (m_j - mu_i) + (t S1_j - (1-t) S0_i) C^-1 (x - c), weights w_ij ~ a_i b_j N(x; c, C).
    x has shape [..., D].
    """

    def __init__(self, weights0, means0, covs0, weights1, means1, covs1):
        f = lambda v: torch.as_tensor(v, dtype=torch.float64)
        self.a, self.mu, self.S0 = f(weights0), f(means0), f(covs0)
        self.b, self.m, self.S1 = f(weights1), f(means1), f(covs1)
        for name, cov in (("covs0", self.S0), ("covs1", self.S1)):
            if (torch.linalg.eigvalsh(cov) <= 0).any():
                raise ValueError(f"{name} must be positive definite (the first inversion call is at t = 0)")
        self.a, self.b = self.a / self.a.sum(), self.b / self.b.sum()

    @property
    def dim(self):
        return self.mu.shape[-1]

    def __call__(self, x, t, point=None):
        shape, dtype = x.shape, x.dtype
        xf = x.reshape(-1, self.dim).to(torch.float64)                       # [B, D]
        c = (1 - t) * self.mu[:, None, :] + t * self.m[None, :, :]            # [I, J, D]
        C = (1 - t) ** 2 * self.S0[:, None] + t ** 2 * self.S1[None, :]       # [I, J, D, D]
        K = t * self.S1[None, :] - (1 - t) * self.S0[:, None]                 # [I, J, D, D]
        L = torch.linalg.cholesky(C)
        diff = xf[:, None, None, :] - c[None]                                  # [B, I, J, D]
        sol = torch.cholesky_solve(diff[..., None], L[None])[..., 0]          # C^-1 (x - c)
        maha = (diff * sol).sum(-1)
        logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)   # [I, J]
        logw = (torch.log(self.a)[:, None] + torch.log(self.b)[None, :])[None] \
            - 0.5 * (maha + logdet[None] + self.dim * math.log(2 * math.pi))
        w = torch.softmax(logw.reshape(len(xf), -1), dim=-1).reshape(logw.shape)
        cond = (self.m[None, :, :] - self.mu[:, None, :])[None] + (K[None] @ sol[..., None])[..., 0]
        v = (w[..., None] * cond).sum(dim=(1, 2))
        return v.reshape(shape).to(dtype)

    def sample(self, n, t, generator=None):
        """n samples of x_t = (1-t) X0 + t X1 with independent X0, X1."""
        def draw(weights, means, covs):
            idx = torch.multinomial(weights, n, replacement=True, generator=generator)
            z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
            return means[idx] + (torch.linalg.cholesky(covs)[idx] @ z[..., None])[..., 0]
        x0, x1 = draw(self.a, self.mu, self.S0), draw(self.b, self.m, self.S1)
        return (1 - t) * x0 + t * x1


def ring_mixture():
    """The standard 2-D test transport: four blobs (std 0.5) on a radius-2 ring at t = 0, two blobs at t = 1.

    Smooth enough that every solver shows its asymptotic order from N = 32 on (ALGORITHM.md section 7).
    """
    angles = torch.tensor([0.25, 0.75, 1.25, 1.75], dtype=torch.float64) * math.pi
    means0 = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    covs0 = torch.eye(2, dtype=torch.float64).expand(4, 2, 2) * 0.5 ** 2
    means1 = torch.tensor([[0.5, 0.0], [-0.5, 0.0]], dtype=torch.float64)
    covs1 = torch.eye(2, dtype=torch.float64).expand(2, 2, 2) * 0.8
    return GaussianMixtureFlow(torch.ones(4), means0, covs0, torch.ones(2), means1, covs1)


def reference_gaussian():
    """A single-Gaussian test field: N(0, 0.5^2) data to N(0, 1) noise. (The published round-trip figures of
    ALGORITHM.md section 7 come from another ratio of the two widths, 1.5; see tests/unit/test_solvers.py.)"""
    return GaussianFlow(0.0, 0.5, 0.0, 1.0)
