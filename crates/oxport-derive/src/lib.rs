//! `#[derive(Module)]`: implements `oxport::Module` for a struct from attributes on its fields.
//!
//! * `#[module]` — a submodule (a type implementing `Module`, or `Option` of one), named after the field.
//! * `#[param]` — a parameter (`Tensor` or `Option<Tensor>`).
//! * `#[buffer]` / `#[buffer(persistent = false)]` — a buffer (`Tensor` or `Option<Tensor>`).
//! * `#[training]` — a `std::cell::Cell<bool>` that `train()`/`eval()` set (`self.training`).
//! * `#[module(type_name = "torchvision.models.resnet.BasicBlock")]` on the struct sets the type shown in
//!   `nn_module_stack` (default: `__main__.<StructName>`, as for a class defined in a script).
//! * `#[module(crate = "oxport_export")]` names the path of the export API when the model is not written
//!   against the `oxport` facade (default: `::oxport::export_api`).
//!
//! Fields are registered in declaration order, as `nn.Module.__setattr__` registers them.
use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitStr, Type};

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

/// See the crate documentation.
#[proc_macro_derive(Module, attributes(module, param, buffer, training))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let mut type_name = format!("__main__.{name}");
    let mut krate: syn::Path = syn::parse_quote!(::oxport::export_api);
    for attr in &input.attrs {
        if attr.path().is_ident("module") {
            let r = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("type_name") {
                    type_name = meta.value()?.parse::<LitStr>()?.value();
                    Ok(())
                } else if meta.path.is_ident("crate") {
                    krate = meta.value()?.parse::<LitStr>()?.parse()?;
                    Ok(())
                } else {
                    Err(meta.error("expected `type_name = \"...\"` or `crate = \"...\"`"))
                }
            });
            if let Err(e) = r {
                return e.to_compile_error().into();
            }
        }
    }
    let Data::Struct(data) = &input.data else {
        return syn::Error::new_spanned(&input, "#[derive(Module)] supports structs")
            .to_compile_error()
            .into();
    };
    let no_fields = syn::punctuated::Punctuated::new();
    let fields = match &data.fields {
        Fields::Named(f) => &f.named,
        // A unit struct (`struct GELU;`) has no members.
        Fields::Unit => &no_fields,
        Fields::Unnamed(_) => {
            return syn::Error::new_spanned(&input, "#[derive(Module)] needs named fields")
                .to_compile_error()
                .into()
        }
    };
    let (mut children, mut params, mut buffers, mut training) = (vec![], vec![], vec![], vec![]);
    for f in fields {
        let ident = f.ident.as_ref().expect("named field");
        let key = ident.to_string();
        let opt = is_option(&f.ty);
        for attr in &f.attrs {
            if attr.path().is_ident("module") {
                children.push(if opt {
                    quote! { if let Some(m) = &self.#ident { v.push((#key.to_string(), m as &dyn #krate::Module)); } }
                } else {
                    quote! { v.push((#key.to_string(), &self.#ident as &dyn #krate::Module)); }
                });
            } else if attr.path().is_ident("param") {
                params.push(if opt {
                    quote! { if let Some(t) = &self.#ident { v.push((#key.to_string(), t)); } }
                } else {
                    quote! { v.push((#key.to_string(), &self.#ident)); }
                });
            } else if attr.path().is_ident("training") {
                training.push(quote! { self.#ident.set(training); });
            } else if attr.path().is_ident("buffer") {
                let mut persistent = true;
                if matches!(attr.meta, syn::Meta::List(_)) {
                    let r = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("persistent") {
                            persistent = meta.value()?.parse::<syn::LitBool>()?.value;
                            Ok(())
                        } else {
                            Err(meta.error("expected `persistent = true|false`"))
                        }
                    });
                    if let Err(e) = r {
                        return e.to_compile_error().into();
                    }
                }
                buffers.push(if opt {
                    quote! { if let Some(t) = &self.#ident { v.push((#key.to_string(), t, #persistent)); } }
                } else {
                    quote! { v.push((#key.to_string(), &self.#ident, #persistent)); }
                });
            }
        }
    }
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    quote! {
        impl #impl_g #krate::Module for #name #ty_g #where_g {
            fn type_name(&self) -> String { #type_name.to_string() }
            fn named_children(&self) -> Vec<(String, &dyn #krate::Module)> {
                let mut v: Vec<(String, &dyn #krate::Module)> = Vec::new();
                #(#children)*
                v
            }
            fn named_own_parameters(&self) -> Vec<(String, &#krate::Tensor)> {
                let mut v: Vec<(String, &#krate::Tensor)> = Vec::new();
                #(#params)*
                v
            }
            fn named_own_buffers(&self) -> Vec<(String, &#krate::Tensor, bool)> {
                let mut v: Vec<(String, &#krate::Tensor, bool)> = Vec::new();
                #(#buffers)*
                v
            }
            fn set_own_training(&self, training: bool) {
                let _ = training;
                #(#training)*
            }
        }
    }
    .into()
}
