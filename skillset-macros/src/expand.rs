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
    let target = attr::parse(args, &mut errors);

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
        let (path, meta) = metadata::load();
        match meta.as_ref() {
            Err(message) => errors.push(Span::call_site(), message),
            Ok(meta) => {
                let impls = match target {
                    Target::Family(lit) => {
                        let name = lit.value();
                        match name.parse::<Family>() {
                            Ok(f) => generate::for_family(&s.ident, meta, f),
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
                            Some(entry) => Some(generate::for_model_type(&s.ident, meta, entry)),
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
                    let path = path.display().to_string();
                    generated = quote! {
                        // Rebuild when the metadata changes.
                        const _: &[u8] = include_bytes!(#path);
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
