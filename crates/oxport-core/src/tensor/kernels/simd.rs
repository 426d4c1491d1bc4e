//! Run-time instruction-set dispatch for the vectorised f32 kernels ([`super::vmath`]).
//!
//! A kernel is written once, as plain scalar Rust in an `#[inline(always)]` function generic over
//! `const FMA: bool`, over slices so that LLVM's vectorisers turn it into SIMD code. [`dispatch!`]
//! compiles that body three times: inside an `avx512f,avx512vl,avx512dq,avx2,fma` function (16 f32
//! lanes), inside an `avx2,fma` function (8 lanes) and as plain code (the target's baseline: SSE2's
//! 4 lanes on x86_64), and picks one at run time from the CPU's features. Only the portable path
//! exists off x86_64.
//!
//! The ISA is detected once ([`detected`]); `OXPORT_SIMD=portable|avx2|avx512` in the environment
//! caps it (for benchmarks and for running the test suites on each path), and [`with_isa`] forces one
//! on the calling thread (tests). Parallel kernels read [`active`] once, before they fan out, and pass
//! the [`Isa`] to every chunk: rayon's worker threads do not see a thread's forced ISA.
use std::cell::Cell;
use std::sync::OnceLock;

/// An instruction set a vectorised kernel is compiled for, in increasing order of capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86_64), no FMA.
    Portable,
    /// AVX2 with FMA: 8 f32 lanes.
    Avx2,
    /// AVX-512 F/VL/DQ with AVX2 and FMA: 16 f32 lanes.
    Avx512,
}

impl Isa {
    /// Every ISA, from the least capable.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name `OXPORT_SIMD` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU runs code compiled for `self` (checked at run time).
    #[inline]
    pub fn is_available(self) -> bool {
        self <= best()
    }

    /// `self` if this CPU has it, else the most capable ISA it has (all of them below `self`).
    /// [`dispatch!`] runs the result, so no value of `Isa` can make it execute instructions the CPU
    /// lacks.
    #[inline]
    pub fn usable(self) -> Isa {
        self.min(best())
    }

    fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// The most capable ISA this CPU has, probed once with `is_x86_feature_detected!`.
fn best() -> Isa {
    static BEST: OnceLock<Isa> = OnceLock::new();
    *BEST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512dq");
            if avx2 && avx512 {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

/// The most capable ISA this CPU has, capped by `OXPORT_SIMD` when set (an unknown value is ignored).
/// Computed once per process.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        match std::env::var("OXPORT_SIMD")
            .ok()
            .as_deref()
            .and_then(Isa::from_name)
        {
            Some(cap) => cap.usable(),
            None => best(),
        }
    })
}

thread_local! {
    static FORCED: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// The ISA kernels called on this thread use: the one [`with_isa`] forces, else [`detected`].
#[inline]
pub fn active() -> Isa {
    FORCED.with(Cell::get).unwrap_or_else(detected)
}

/// Runs `f` with [`active`] returning `isa` on this thread (restored afterwards, also on a panic).
/// Panics if the CPU does not have `isa`.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    assert!(
        isa.is_available(),
        "this CPU cannot run {} code",
        isa.name()
    );
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(Some(isa))));
    f()
}

/// Runs `f` compiled with AVX-512 (F, VL, DQ), AVX2 and FMA enabled: an `#[inline(always)]` body
/// called from `f` is vectorised for 16 lanes.
///
/// # Safety
/// The CPU must have those features ([`Isa::Avx512`]`.is_available()`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` compiled with AVX2 and FMA enabled.
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`Isa::Avx2`]`.is_available()`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `dispatch!(isa, FMA => body)`: evaluates `body` compiled for [`Isa::usable`]`(isa)`, with a
/// `const FMA: bool` in scope saying whether that ISA has fused multiply-add (use it as the body's
/// const generic: `exp_kernel::<FMA>(src, dst)`). `body` is expanded once per ISA.
macro_rules! dispatch {
    ($isa:expr, $fma:ident => $body:expr) => {{
        match $crate::tensor::kernels::simd::Isa::usable($isa) {
            #[cfg(target_arch = "x86_64")]
            $crate::tensor::kernels::simd::Isa::Avx512 => {
                #[allow(dead_code)]
                const $fma: bool = true;
                // SAFETY: `Isa::usable` returns Avx512 only when `best()`'s `is_x86_feature_detected!`
                // probe found avx512f, avx512vl, avx512dq, avx2 and fma on this CPU.
                unsafe { $crate::tensor::kernels::simd::run_avx512(#[inline(always)] || $body) }
            }
            #[cfg(target_arch = "x86_64")]
            $crate::tensor::kernels::simd::Isa::Avx2 => {
                #[allow(dead_code)]
                const $fma: bool = true;
                // SAFETY: `Isa::usable` returns Avx2 or better only when `best()`'s
                // `is_x86_feature_detected!` probe found avx2 and fma on this CPU.
                unsafe { $crate::tensor::kernels::simd::run_avx2(#[inline(always)] || $body) }
            }
            _ => {
                #[allow(dead_code)]
                const $fma: bool = false;
                $body
            }
        }
    }};
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    /// A body whose result shows which path ran: FMA rounds `a * b + c` once.
    #[inline(always)]
    fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }

    #[test]
    fn forcing_an_isa_is_scoped_and_dispatch_runs_it() {
        let before = active();
        // (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 exactly; unfused, the product rounds it away.
        let e = f32::EPSILON;
        let (a, c) = (1.0 + e, -(1.0 + 2.0 * e));
        for isa in Isa::ALL {
            if !isa.is_available() {
                continue;
            }
            let (seen, r) = with_isa(isa, || {
                (active(), dispatch!(active(), FMA => madd::<FMA>(a, a, c)))
            });
            assert_eq!(seen, isa);
            let fused = isa != Isa::Portable;
            assert_eq!(r == e * e, fused, "{isa:?}: {r:e}");
            assert_eq!(active(), before);
        }
    }

    #[test]
    fn usable_never_exceeds_the_cpu() {
        for isa in Isa::ALL {
            let u = isa.usable();
            assert!(u <= isa && u.is_available());
        }
        assert!(detected().is_available());
        #[cfg(target_arch = "x86_64")]
        {
            let has = |f: &[bool]| f.iter().all(|&b| b);
            let avx2 = has(&[
                is_x86_feature_detected!("avx2"),
                is_x86_feature_detected!("fma"),
            ]);
            let avx512 = avx2
                && has(&[
                    is_x86_feature_detected!("avx512f"),
                    is_x86_feature_detected!("avx512vl"),
                    is_x86_feature_detected!("avx512dq"),
                ]);
            assert_eq!(Isa::Avx2.is_available(), avx2);
            assert_eq!(Isa::Avx512.is_available(), avx512);
        }
        assert_eq!(Isa::from_name(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::from_name("sse"), None);
    }

    #[test]
    fn with_isa_restores_after_a_panic() {
        let before = active();
        let r = std::panic::catch_unwind(|| with_isa(Isa::Portable, || panic!("boom")));
        assert!(r.is_err());
        assert_eq!(active(), before);
    }
}
