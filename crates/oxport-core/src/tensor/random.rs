//! A seedable random generator for `randn`/`rand` and weight init.
//!
//! The stream is xoshiro256** seeded through SplitMix64; normals use Box–Muller. It is reproducible across
//! platforms for a given seed, but it is not PyTorch's mt19937 stream.

/// A seedable pseudo-random generator (`torch.Generator().manual_seed(seed)`).
#[derive(Debug, Clone)]
pub struct Generator {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^ (z >> 31)
        };
        Generator {
            s: [next(), next(), next(), next()],
            spare_normal: None,
        }
    }
    /// The next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }
    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

thread_local! {
    static DEFAULT: std::cell::RefCell<Generator> = std::cell::RefCell::new(Generator::new(0));
}

/// `torch.manual_seed(seed)`: reseeds this thread's default generator, which random ops without an
/// explicit generator draw from (training-mode dropout).
pub fn manual_seed(seed: u64) {
    DEFAULT.with(|g| *g.borrow_mut() = Generator::new(seed));
}

/// Runs `f` with this thread's default generator.
pub(crate) fn with_default_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    DEFAULT.with(|g| f(&mut g.borrow_mut()))
}

/// Multipliers of inverted dropout: `0` with probability `p`, else `1 / (1 - p)`.
pub(crate) fn dropout_mask(n: usize, p: f64) -> Vec<f64> {
    if p >= 1.0 {
        return vec![0.0; n];
    }
    let keep = 1.0 / (1.0 - p);
    with_default_generator(|g| {
        (0..n)
            .map(|_| if g.uniform() < p { 0.0 } else { keep })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reproducible_and_roughly_normal() {
        let mut a = Generator::new(7);
        let mut b = Generator::new(7);
        let xs: Vec<f64> = (0..20000).map(|_| a.normal()).collect();
        let ys: Vec<f64> = (0..20000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn dropout_mask_drops_p_and_scales_the_rest() {
        manual_seed(3);
        let m = dropout_mask(100_000, 0.25);
        let dropped = m.iter().filter(|&&x| x == 0.0).count() as f64 / m.len() as f64;
        assert!((dropped - 0.25).abs() < 0.01, "{dropped}");
        assert!(m.iter().all(|&x| x == 0.0 || (x - 4.0 / 3.0).abs() < 1e-12));
        assert_eq!(dropout_mask(5, 1.0), vec![0.0; 5]);
        manual_seed(3);
        assert_eq!(
            dropout_mask(100_000, 0.25),
            m,
            "manual_seed makes it reproducible"
        );
    }
}
