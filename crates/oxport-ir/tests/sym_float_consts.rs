//! Float constants in symbolic expressions, against PyTorch: for each constant `c` of
//! tests/fixtures/export/sym_float_consts.json (written by tools/gen_sym_float_fixtures.py from PyTorch's
//! export of `x * (sym_float(t) * c)`), oxport's `0.5*ToFloat(s77)`-style expression must serialize to the
//! srepr PyTorch stored (`Float('0.10000000000000001', precision=53)`) and print as PyTorch printed it.
use oxport_core::{SymFloat, SymInt};

#[test]
fn float_constants_serialize_and_print_like_pytorch() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/export/sym_float_consts.json"
    );
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() > 20);
    let s = SymFloat::from_int(&SymInt::symbol("s77", 5));
    for case in &cases {
        let c: f64 = case["value"].as_str().unwrap().parse().unwrap();
        let SymFloat::Sym(e) = s.mul(&SymFloat::Float(c)) else {
            panic!("{c}: folded")
        };
        let srepr = oxport_ir::sympy::srepr(&e);
        assert_eq!(srepr, case["srepr"].as_str().unwrap(), "srepr of {c}");
        let printed = oxport_ir::sympy::pretty(&srepr);
        assert_eq!(printed, case["printed"].as_str().unwrap(), "print of {c}");
    }
}
