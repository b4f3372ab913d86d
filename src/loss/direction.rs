//! The distance of two rows with its unit direction `∂D/∂x = (x − y)/D`, for losses that
//! are linear in distances (triplet margin losses): exact at every magnitude, the
//! subgradient 0 at `D = 0`, and the limit direction at infinite distance.

#![forbid(unsafe_code)]

use crate::kernels::Kernels;
use crate::numerics::{Rescaled, Separation, sqrt};

/// How the components of the unit direction `(x − y)/D` are formed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    /// `(x − y)·k` with `k = 1/D`: the common case, `D²` positive, normal and finite.
    Plain(f32),
    /// `unit(x, y)·k` with `k = 1/√t`: the distance was rescaled (tiny or huge differences).
    Rescaled(Rescaled, f32),
    /// `(x − y + ε)·k` in f64, `k = 1/D`: torch's `pairwise_distance` with `eps`.
    Shifted { eps: f64, k: f64 },
    /// `D = ∞` (an infinite input): the limit direction, `sign(x − y)·k` in the infinite
    /// components (`k = 1/√count`), 0 elsewhere. With `eps` the shifted difference.
    Infinite { eps: f64, k: f32 },
    /// `D = 0` (the subgradient 0) or NaN (every component NaN).
    Constant(f32),
}

impl Direction {
    /// Component `(x − y)/D`.
    #[inline(always)]
    pub(crate) fn at(self, x: f32, y: f32) -> f32 {
        match self {
            Direction::Plain(k) => (x - y) * k,
            Direction::Rescaled(r, k) => r.unit(x, y) * k,
            Direction::Shifted { eps, k } => ((f64::from(x) - f64::from(y) + eps) * k) as f32,
            Direction::Infinite { eps, k } => {
                let d = f64::from(x) - f64::from(y) + eps;
                if d.is_infinite() {
                    if d > 0.0 { k } else { -k }
                } else {
                    0.0
                }
            }
            Direction::Constant(c) => c,
        }
    }

    /// `Some(1/D)` for the plain form.
    #[inline(always)]
    pub(crate) fn plain(self) -> Option<f32> {
        match self {
            Direction::Plain(k) => Some(k),
            _ => None,
        }
    }
}

/// A distance and its direction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leg {
    pub distance: f32,
    pub direction: Direction,
}

impl Leg {
    /// The exact Euclidean distance of `x` and `y` through the backend's kernel.
    #[inline]
    pub(crate) fn euclidean(kernels: &Kernels, x: &[f32], y: &[f32]) -> Leg {
        Leg::from_separation(Separation::of(kernels, x, y), x, y)
    }

    /// From a distance computed elsewhere (a distance row): the direction needs the
    /// rescaled form only when `D²` is not positive, normal and finite.
    #[inline]
    pub(crate) fn from_distance(distance: f32, x: &[f32], y: &[f32]) -> Leg {
        let s = distance * distance;
        if crate::numerics::is_positive_normal(s) {
            Leg {
                distance,
                direction: Direction::Plain(1.0 / distance),
            }
        } else {
            Leg::from_separation(Separation::rescaled(x, y), x, y)
        }
    }

    #[inline]
    fn from_separation(sep: Separation, x: &[f32], y: &[f32]) -> Leg {
        let distance = sep.distance;
        let direction = match sep.rescaled {
            Some(r) => Direction::Rescaled(r, 1.0 / sqrt(r.t)),
            None if distance.is_nan() || distance == 0.0 => Direction::Constant(distance),
            None if distance.is_infinite() => infinite(x, y, 0.0),
            None => Direction::Plain(1.0 / distance),
        };
        Leg {
            distance,
            direction,
        }
    }

    /// `D = ‖x − y + ε‖` (torch's `F.pairwise_distance`), summed in f64: every finite f32
    /// difference squares without overflow or underflow there, so no rescaling is needed.
    pub(crate) fn shifted(x: &[f32], y: &[f32], eps: f32) -> Leg {
        let e = f64::from(eps);
        let s: f64 = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| {
                let d = f64::from(a) - f64::from(b) + e;
                d * d
            })
            .sum();
        let d64 = libm::sqrt(s);
        let distance = d64 as f32;
        let direction = if d64.is_nan() || d64 == 0.0 {
            Direction::Constant(d64 as f32)
        } else if d64.is_infinite() {
            infinite(x, y, e)
        } else {
            Direction::Shifted {
                eps: e,
                k: 1.0 / d64,
            }
        };
        Leg {
            distance,
            direction,
        }
    }
}

/// The limit direction of an infinite distance: the infinite components share it equally.
#[cold]
fn infinite(x: &[f32], y: &[f32], eps: f64) -> Direction {
    let count = x
        .iter()
        .zip(y)
        .filter(|&(&a, &b)| (f64::from(a) - f64::from(b) + eps).is_infinite())
        .count();
    Direction::Infinite {
        eps,
        k: 1.0 / sqrt(count.max(1) as f32),
    }
}
