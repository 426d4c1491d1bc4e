//! "No panic on any input": every registered overload is called with many random argument lists that
//! fit its schema's types but not its semantics (odd ranks and sizes, empty and negative dims, mixed
//! dtypes, out-of-range ints). Each call must return `Ok` or `Err` — never panic.
use oxport_core::dtype::ALL_DTYPES;
use oxport_core::ops::schema::{BaseType, SchemaArg};
use oxport_core::ops::{registry, Args, Value};
use oxport_core::tensor::Generator;
use oxport_core::{Scalar, Tensor};

struct Rng(Generator);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn tensor(&mut self) -> Tensor {
        let rank = self.below(5) as usize;
        let sizes: Vec<usize> = (0..rank).map(|_| self.below(4) as usize).collect();
        let n: usize = sizes.iter().product();
        let base = Tensor::from_vec(
            (0..n)
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect::<Vec<f32>>(),
            &sizes,
        )
        .expect("valid");
        // Mostly float32 (the common case), sometimes any other dtype.
        let dt = if self.below(3) == 0 {
            ALL_DTYPES[self.below(ALL_DTYPES.len() as u64) as usize]
        } else {
            oxport_core::DType::F32
        };
        base.cast_untraced(dt)
    }
    fn value(&mut self, arg: &SchemaArg) -> Value<Tensor> {
        let ty = &arg.ty;
        if (ty.optional || arg.default.is_some()) && self.below(4) == 0 {
            return Value::None;
        }
        let list_len = ty.list.map(|n| n.unwrap_or(self.below(4) as usize));
        match (ty.base, list_len) {
            (BaseType::Tensor, None) => Value::Tensor(self.tensor()),
            (BaseType::Tensor, Some(n)) => {
                Value::Tensors((0..n.max(1)).map(|_| self.tensor()).collect())
            }
            (BaseType::Int | BaseType::SymInt, None) => Value::Int(self.int(-3, 4).into()),
            (BaseType::Int | BaseType::SymInt, Some(n)) => {
                Value::Ints((0..n).map(|_| self.int(-2, 4).into()).collect())
            }
            (BaseType::Float, _) => {
                Value::Float([0.0, 0.5, 1e-5, -1.0, f64::NAN][self.below(5) as usize])
            }
            (BaseType::Bool, None) => Value::Bool(self.below(2) == 0),
            (BaseType::Bool, Some(n)) => Value::Bools((0..n).map(|_| self.below(2) == 0).collect()),
            (BaseType::Scalar, _) => Value::Scalar(
                [
                    Scalar::Int(2),
                    Scalar::Float(-0.5),
                    Scalar::Bool(true),
                    Scalar::Int(-1),
                    Scalar::Float(f64::INFINITY),
                ][self.below(5) as usize],
            ),
            (BaseType::ScalarType, _) => {
                Value::ScalarType(ALL_DTYPES[self.below(ALL_DTYPES.len() as u64) as usize])
            }
            (BaseType::Str, _) => {
                Value::Str(["none", "tanh", "bogus"][self.below(3) as usize].to_string())
            }
            _ => Value::None,
        }
    }
}

#[test]
fn random_calls_never_panic() {
    let mut rng = Rng(Generator::new(2028));
    let mut panics = Vec::new();
    // Panics are caught and reported together; silence the default hook's backtraces meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for op in registry().ops() {
        for trial in 0..1000 {
            let mut values = Vec::new();
            for arg in &op.schema.arguments {
                values.push(rng.value(arg));
            }
            let desc = format!("{values:?}");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let pos = values.clone();
                let args = Args::bind(&op.schema, pos, vec![])?;
                op.run(&args)
            }));
            if r.is_err() {
                panics.push(format!(
                    "{} trial {trial}: {}",
                    op.name,
                    &desc[..desc.len().min(400)]
                ));
                break; // one report per op is enough
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(
        panics.is_empty(),
        "{} ops panic:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
