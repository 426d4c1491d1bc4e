//! Programs that are wrong in ways a loader cannot see: node arguments that do not fit the op's schema,
//! a node with more outputs than its op returns, inputs of a dtype the op cannot take, declared output
//! metadata the op does not compute. `Module::new` refuses each at plan time, naming the node and the
//! op — never a panic, never a wrong answer at call time.
use oxport_ir::schema::{Argument, ScalarType, TensorArgument};
use oxport_ir::ExportedProgram;
use oxport_runtime::Module;
use std::path::Path;

/// small_cnn_bn_eval (PyTorch's export): conv2d -> batch_norm -> relu -> pool -> flatten -> linear.
fn program() -> ExportedProgram {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pt2/small_cnn_bn_eval.train.pt2");
    oxport_ir::pt2::load(p).unwrap()
}

fn node_index(ep: &ExportedProgram, name: &str) -> usize {
    ep.graph()
        .nodes
        .iter()
        .position(|n| n.name.as_deref() == Some(name))
        .unwrap()
}

fn plan_error(ep: &ExportedProgram) -> String {
    match Module::new(ep) {
        Ok(_) => panic!("the program was accepted"),
        Err(e) => {
            eprintln!("{e}");
            e.to_string()
        }
    }
}

#[test]
fn the_unchanged_program_plans() {
    Module::new(&program()).unwrap();
}

#[test]
fn an_extra_argument_names_the_node_and_the_op() {
    let mut ep = program();
    let i = node_index(&ep, "relu");
    let extra = ep.graph().nodes[i].inputs[0].clone();
    ep.graph_module.graph.nodes[i].inputs.push(extra);
    let e = plan_error(&ep);
    assert!(
        e.starts_with("cannot run node 'relu' (torch.ops.aten.relu.default)"),
        "{e}"
    );
    assert!(e.contains("argument"), "{e}");
}

#[test]
fn an_argument_of_the_wrong_type_names_the_argument() {
    let mut ep = program();
    let i = node_index(&ep, "adaptive_avg_pool2d");
    // output_size (int[2]) given a string
    ep.graph_module.graph.nodes[i].inputs[1].arg = Argument::AsString("1".into());
    let e = plan_error(&ep);
    assert!(
        e.starts_with(
            "cannot run node 'adaptive_avg_pool2d' (torch.ops.aten.adaptive_avg_pool2d.default)"
        ),
        "{e}"
    );
    assert!(e.contains("output_size"), "{e}");
}

#[test]
fn more_outputs_than_the_op_returns() {
    let mut ep = program();
    let i = node_index(&ep, "relu");
    let out = ep.graph_module.graph.nodes[i].outputs[0].clone();
    ep.graph_module.graph.nodes[i].outputs.push(match out {
        Argument::AsTensor(_) => Argument::AsTensor(TensorArgument {
            name: "relu_extra".into(),
        }),
        other => other,
    });
    let e = plan_error(&ep);
    assert!(e.starts_with("cannot run node 'relu'"), "{e}");
    assert!(
        e.contains("2 outputs but aten.relu.default returns 1"),
        "{e}"
    );
}

#[test]
fn an_input_dtype_the_op_cannot_take() {
    let mut ep = program();
    // x declared int64: conv2d's weight is float32.
    ep.graph_module
        .graph
        .tensor_values
        .get_mut("x")
        .unwrap()
        .dtype = ScalarType::Long;
    let e = plan_error(&ep);
    assert!(
        e.starts_with("cannot run node 'conv2d' (torch.ops.aten.conv2d.default)"),
        "{e}"
    );
}

#[test]
fn a_declared_output_the_op_does_not_compute() {
    let mut ep = program();
    let tv = &mut ep.graph_module.graph.tensor_values;
    tv.get_mut("relu").unwrap().dtype = ScalarType::Half;
    let e = plan_error(&ep);
    assert!(
        e.contains("output 'relu' is declared f16 but aten.relu.default computes f32"),
        "{e}"
    );
    let mut ep = program();
    let sizes = &mut ep
        .graph_module
        .graph
        .tensor_values
        .get_mut("linear")
        .unwrap()
        .sizes;
    sizes[1] = oxport_ir::schema::SymInt::AsInt(11);
    let e = plan_error(&ep);
    assert!(
        e.contains("output 'linear' is declared with sizes [2, 11]"),
        "{e}"
    );
}
