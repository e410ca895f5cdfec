//! Expansion: the struct stays as written; the `Skillset`/`Supports` impls come from
//! skillset-codegen, the same generator build.rs uses.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::Item;

use crate::attr::{self, Errors, Target};
use crate::metadata;
use skillset_codegen::names::did_you_mean;
use skillset_codegen::{generate, suggest, Family};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let (target, krate) = attr::parse(args, &mut errors);
    let rt = match &krate {
        Some(path) => quote!(#path),
        None => generate::default_runtime(),
    };

    let parsed: Option<syn::ItemStruct> = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(s)) => {
            if !s.generics.params.is_empty() {
                errors.push(
                    s.generics.span(),
                    "#[skillset] does not take a generic struct: a skillset is one concrete type",
                );
                None
            } else {
                Some(s)
            }
        }
        Ok(other) => {
            let (what, span) = describe(&other);
            errors.push(
                span,
                format!("#[skillset] goes on a struct, not on {what}: write `#[skillset(family = \"bert\")] struct MyBert;`"),
            );
            None
        }
        Err(e) => {
            errors.push_error(e);
            None
        }
    };

    let mut generated = TokenStream::new();
    if let (Some(target), Some(s)) = (&target, &parsed) {
        let (path, meta, results) = metadata::load();
        match (meta.as_ref(), results.as_ref()) {
            (Err(message), _) | (_, Err(message)) => errors.push(Span::call_site(), message),
            (Ok(meta), Ok(results)) => {
                let impls = match target {
                    Target::Family(lit) => {
                        let name = lit.value();
                        match name.parse::<Family>() {
                            Ok(f) => generate::for_family(&rt, &s.ident, meta, f),
                            Err(e) => {
                                errors.push(
                                    lit.span(),
                                    format!("{e} (families: {})", list(Family::names())),
                                );
                                None
                            }
                        }
                    }
                    Target::ModelType(lit) => {
                        let name = lit.value();
                        match meta.model_type(&name) {
                            Some(entry) => Some(generate::for_model_type(
                                &rt, &s.ident, meta, entry, results,
                            )),
                            None => {
                                let near = suggest(
                                    &name,
                                    meta.model_types.iter().map(|e| e.model_type.as_str()),
                                );
                                errors.push(
                                    lit.span(),
                                    format!(
                                        "unknown model type `{name}`{} (transformers {} has {} model types; `skillset --list-families` shows them by family)",
                                        did_you_mean(&near),
                                        meta.transformers_version,
                                        meta.model_types.len()
                                    ),
                                );
                                None
                            }
                        }
                    }
                };
                if let Some(impls) = impls {
                    // A file named by SKILLSET_MODEL_TYPES: rebuild when it changes
                    // (the embedded copy rebuilds the macro itself).
                    let rebuild = path.map(|p| {
                        let p = p.display().to_string();
                        quote!(
                            const _: &[u8] = include_bytes!(#p);
                        )
                    });
                    generated = quote! {
                        #rebuild
                        #impls
                    };
                }
            }
        }
    }

    let errors = errors.into_compile_errors();
    // Keep the user's item so that one mistake does not cascade into "cannot find type".
    let item = match parsed {
        Some(s) => quote!(#s),
        None => item,
    };
    quote! {
        #item
        #generated
        #errors
    }
}

fn list(names: impl Iterator<Item = &'static str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(item: &Item) -> (&'static str, Span) {
    match item {
        Item::Enum(e) => ("an enum", e.enum_token.span),
        Item::Fn(f) => ("a function", f.sig.fn_token.span),
        Item::Union(u) => ("a union", u.union_token.span),
        Item::Trait(t) => ("a trait", t.trait_token.span),
        Item::Impl(i) => ("an impl block", i.impl_token.span),
        Item::Mod(m) => ("a module", m.mod_token.span),
        Item::Const(c) => ("a const", c.const_token.span),
        Item::Static(s) => ("a static", s.static_token.span),
        Item::Type(t) => ("a type alias", t.type_token.span),
        other => ("this item", other.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str) -> String {
        let args: TokenStream = args.parse().unwrap();
        let item: TokenStream = "struct MyBert;".parse().unwrap();
        expand(args, item).to_string()
    }

    #[test]
    fn the_runtime_path_is_the_one_asked_for() {
        let default = expand_str(r#"family = "bert""#);
        assert!(
            default.contains(":: skillset_runtime :: Skillset"),
            "{default}"
        );
        for args in [
            r#"family = "bert", crate = skillsets::runtime"#,
            r#"model_type = "roberta", crate = "skillsets::runtime""#,
        ] {
            let out = expand_str(args);
            assert!(out.contains("skillsets :: runtime :: Skillset"), "{out}");
            assert!(!out.contains("skillset_runtime"), "{out}");
            assert!(!out.contains("compile_error"), "{out}");
        }
    }

    #[test]
    fn model_types_carry_the_recorded_backend_statuses() {
        // bert is verified on the CPU in backend_results.json: the macro says so too.
        let out = expand_str(r#"model_type = "bert""#);
        assert!(
            out.contains("Backend :: Cpu , :: skillset_runtime :: BackendStatus :: Verified"),
            "{out}"
        );
    }
}
